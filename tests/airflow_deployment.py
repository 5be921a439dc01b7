"""A real Airflow 3 deployment on loopback for end-to-end tests.

api-server, scheduler, dag-processor and triggerer run as separate processes with the
LocalExecutor and SQLite in a throwaway AIRFLOW_HOME. Each process leads its own process group,
and ``stop`` ends every group by the PID it started (SIGTERM, then SIGKILL), also after a failure.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_hubspot_prefs.emulator.server import free_port

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
FINISHED = {"success", "failed"}


class AirflowDeployment:
    """Airflow's components as subprocesses; ``api`` calls the REST API (auth disabled: all admins)."""

    def __init__(self, home: Path, dags_folder: str) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.crashed: list[subprocess.Popen[bytes]] = []
        airflow = str(Path(sys.executable).with_name("airflow"))
        self.airflow = airflow
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": dags_folder,
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                # A crashed scheduler's running tasks are found and reset within seconds (the
                # overlapping-tries test), not after the defaults' 30 s and 5 min.
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "5",
                "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                # Where batch tasks keep their work stores: the tests remove it to stand for a retry
                # that runs on another machine.
                "HUBSPOT_PREFS_WORK_DIR": str(home / "work-stores"),
            }
        )
        self.env = env
        self.http = httpx.Client(base_url=f"{self.url}/api/v2", timeout=30)
        self.seen_states: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        self._previous_sigterm: Any = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, timeout: float = 180) -> AirflowDeployment:
        # A SIGTERM to the test run (CI cancelling it) must still reach ``stop``: as SystemExit it
        # unwinds through the fixtures' finalizers instead of leaving the components running.
        self._previous_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        self.home.mkdir(parents=True, exist_ok=True)
        self.cli("db", "migrate")
        for name in COMPONENTS:
            self._start_component(name)
        self.wait_healthy(timeout)
        return self

    def _start_component(self, name: str) -> None:
        args = [self.airflow, name]
        if name == "api-server":
            args += ["--host", "127.0.0.1", "--port", str(self.port)]
        log = open(self.home / f"{name}.out", "ab")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill_and_restart(self, name: str, down_for: float) -> None:
        """SIGKILL one component's own process (its children live on, as after a crash), then start a
        new one ``down_for`` seconds later. The old process group is ended with the deployment."""
        crashed = self.processes.pop(name)
        os.kill(crashed.pid, signal.SIGKILL)
        crashed.wait(10)
        self.crashed.append(crashed)
        time.sleep(down_for)
        self._start_component(name)

    def stop(self) -> None:
        """End every component's process group, by the PID this deployment started."""
        for process in self.crashed:  # what a crashed component's children still run
            _signal_group(process.pid, signal.SIGKILL)
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGKILL)  # whatever a group still holds
            process.wait(timeout=10)
        self.http.close()
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)

    def alive(self) -> dict[str, bool]:
        return {name: process.poll() is None for name, process in self.processes.items()}

    def cli(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.airflow, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            dead = [name for name, up in self.alive().items() if not up]
            if dead:
                raise RuntimeError(f"Airflow component(s) exited: {dead}; see {self.home}/*.out")
            try:
                last = self.http.get("/monitor/health").json()
                if all(
                    (last.get(part) or {}).get("status") == "healthy"
                    for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
                ):
                    return
            except (httpx.TransportError, ValueError):
                pass
            time.sleep(1)
        raise RuntimeError(f"Airflow did not become healthy in {timeout:.0f} s: {last}")

    # -- REST API ------------------------------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.http.get(f"/dags/{dag_id}")
            if response.status_code == 200:
                return
            time.sleep(1)
        errors = self.http.get("/importErrors").text
        raise AssertionError(f"DAG {dag_id} was not parsed in {timeout:.0f} s; import errors: {errors}")

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        self.wait_for_dag(dag_id)
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        return str(run["dag_run_id"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"])

    def poll_run(self, dag_id: str, run_id: str) -> str:
        """The run's state; records each task's states as seen, in order, in ``seen_states``."""
        for ti in self.task_instances(dag_id, run_id):
            seen = self.seen_states[(dag_id, run_id, ti["task_id"])]
            state = str(ti["state"])
            if not seen or seen[-1] != state:
                seen.append(state)
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300, every: float = 0.3) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.poll_run(dag_id, run_id)
            if state in FINISHED:
                return state
            dead = [name for name, up in self.alive().items() if not up]
            if dead:
                raise AssertionError(f"Airflow component(s) exited during the run: {dead}")
            time.sleep(every)
        raise AssertionError(
            f"{dag_id} {run_id} did not finish in {timeout:.0f} s: {self.poll_run(dag_id, run_id)}"
        )

    def task_logs(self, dag_id: str, run_id: str, task_id: str) -> dict[str, str]:
        """Every log file of a task in this run (tries and trigger logs), by file name."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return {
            path.name: path.read_text(errors="replace")
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        }

    def all_log_text(self) -> dict[str, str]:
        """Every file under the deployment's logs folder and every component's output."""
        files = [*(self.home / "logs").rglob("*"), *self.home.glob("*.out")]
        return {str(path): path.read_text(errors="replace") for path in files if path.is_file()}


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
