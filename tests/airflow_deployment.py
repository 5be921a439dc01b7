"""A real Airflow 3 deployment on loopback for end-to-end tests.

api-server, scheduler, dag-processor and triggerer run as separate processes in a throwaway
AIRFLOW_HOME: by default with the LocalExecutor and SQLite; given a database URL and Celery
``machines``, with the CeleryExecutor, that database and one ``airflow celery worker`` per machine
(each with its own hostname and temp dir, standing in for separate machines). Each process leads
its own process group, and ``stop`` ends every group by the PID it started (SIGTERM, then
SIGKILL), also after a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_hubspot_prefs.emulator.server import free_port

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
FINISHED = {"success", "failed"}


@dataclass
class CeleryMachines:
    """Celery workers for a deployment: the broker, and each worker's name and temp dir."""

    broker_url: str
    temp_dirs: dict[str, Path]
    concurrency: int = 2


class AirflowDeployment:
    """Airflow's components as subprocesses; ``api`` calls the REST API.

    :param database_url: SQLAlchemy URL of the metadata database (default: SQLite in ``home``).
    :param celery: run the CeleryExecutor with these workers (``database_url`` required).
    :param extra_env: more environment for every component (configuration, DAG settings).
    :param users: ``{name: (role, password)}`` turns the login on (SimpleAuthManager with these
        users; the REST calls then log in as the first admin). Without it, auth is off: all admins.
    """

    def __init__(
        self,
        home: Path,
        dags_folder: str,
        *,
        database_url: str | None = None,
        celery: CeleryMachines | None = None,
        extra_env: dict[str, str] | None = None,
        users: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        if celery is not None and database_url is None:
            raise ValueError("the CeleryExecutor needs a database server (database_url)")
        self.home = home
        self.celery = celery
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
                # Marks every process of this deployment: task processes lead process groups of
                # their own, so ``stop`` also finds them by this.
                "E2E_DEPLOYMENT": str(home),
            }
        )
        if database_url is not None:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = database_url
        if celery is not None:
            env.update(
                {
                    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                    "AIRFLOW__CELERY__BROKER_URL": celery.broker_url,
                    "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database_url}",
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(celery.concurrency),
                }
            )
            # A task's work store goes to its worker's own temp dir, as on separate machines.
            del env["HUBSPOT_PREFS_WORK_DIR"]
        self.users = dict(users or {})
        if self.users:
            # The passwords file is written before the api-server starts, so that it uses these
            # passwords rather than generating its own.
            passwords = home / "simple_auth_manager_passwords.json"
            home.mkdir(parents=True, exist_ok=True)
            passwords.write_text(json.dumps({name: pw for name, (_, pw) in self.users.items()}))
            env.update(
                {
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                        f"{name}:{role}" for name, (role, _) in self.users.items()
                    ),
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                }
            )
        self.env = {**env, **(extra_env or {})}
        self.http = httpx.Client(base_url=f"{self.url}/api/v2", timeout=30)
        self._below: set[int] = set()  # processes below the components when ``stop`` began
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
        for machine in self.celery.temp_dirs if self.celery else ():
            self._start_component(f"worker-{machine}")
        self.wait_healthy(timeout)
        admin = next((name for name, (role, _) in self.users.items() if role == "admin"), None)
        if admin is not None:
            self.http.headers["Authorization"] = f"Bearer {self.token(admin)}"
        return self

    def _start_component(self, name: str) -> None:
        args, env = [self.airflow, name], self.env
        if name == "api-server":
            args += ["--host", "127.0.0.1", "--port", str(self.port)]
        if name.startswith("worker-"):
            args, env = self._worker(name.removeprefix("worker-"))
        log = open(self.home / f"{name}.out", "ab")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def _worker(self, machine: str) -> tuple[list[str], dict[str, str]]:
        """A Celery worker standing for machine ``machine``: its own hostname and temp dir."""
        assert self.celery is not None
        temp = self.celery.temp_dirs[machine]
        temp.mkdir(parents=True, exist_ok=True)
        env = {
            **self.env,
            "TMPDIR": str(temp),
            "E2E_MACHINE": machine,
            # Task instances record the machine's name as their hostname.
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.e2e_machine.hostname",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), self.env.get("PYTHONPATH")])),
        }
        args = [self.airflow, "celery", "worker", "--celery-hostname", f"{machine}@%h"]
        # Both workers write task logs into this home; none serves them (they would share a port).
        args += ["--skip-serve-logs", "--concurrency", str(self.celery.concurrency)]
        return args, env

    def worker_ready(self, machine: str) -> bool:
        output = self.home / f"worker-{machine}.out"
        return output.exists() and " ready." in output.read_text(errors="replace")

    def kill_and_restart(self, name: str, down_for: float) -> None:
        """SIGKILL one component's own process (its children live on, as after a crash), then start a
        new one ``down_for`` seconds later. The old process group is ended with the deployment."""
        crashed = self.processes.pop(name)
        os.kill(crashed.pid, signal.SIGKILL)
        crashed.wait(10)
        self.crashed.append(crashed)
        time.sleep(down_for)
        self._start_component(name)

    def lose_machine(self, machine: str) -> list[int]:
        """SIGKILL every process of Celery machine ``machine`` at once: its worker, the worker's pool
        and every task process (which lead process groups of their own), as when a machine is lost.
        Returns the PIDs killed."""
        worker = self.processes.pop(f"worker-{machine}")
        pids = [worker.pid, *_descendants(worker.pid)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.wait(10)
        self.crashed.append(worker)
        return pids

    @contextlib.contextmanager
    def running(self) -> Iterator[AirflowDeployment]:
        """Started for the ``with`` block, stopped after it (also after a failure), and then not
        one process of it left."""
        try:
            yield self.start()
        finally:
            self.stop()
            assert not any(self.alive().values()) and not self.leftovers()

    def stop(self) -> None:
        """End every component's process group, by the PID this deployment started, and then any
        process left of this deployment (task processes lead process groups of their own)."""
        self._below = {pid for p in self.processes.values() for pid in _descendants(p.pid)}
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
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.http.close()
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)

    def leftovers(self) -> list[int]:
        """PIDs of this deployment's processes still running (none after ``stop``): those carrying
        its mark, and those found below its components when ``stop`` began."""
        candidates = set(_processes_with(f"E2E_DEPLOYMENT={self.home}")) | self._below
        return sorted(pid for pid in candidates if _running(pid))

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
                ) and all(self.worker_ready(m) for m in (self.celery.temp_dirs if self.celery else ())):
                    return
            except (httpx.TransportError, ValueError):
                pass
            time.sleep(1)
        raise RuntimeError(f"Airflow did not become healthy in {timeout:.0f} s: {last}")

    # -- REST API ------------------------------------------------------------------------------------

    def token(self, user: str) -> str:
        """A fresh access token of ``user`` (one of ``users``), as the login form gets it."""
        answer = httpx.post(
            f"{self.url}/auth/token", json={"username": user, "password": self.users[user][1]}, timeout=30
        )
        if answer.status_code != 201:
            raise AssertionError(f"login of {user} -> {answer.status_code}: {answer.text}")
        return str(answer.json()["access_token"])

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def add_connection(
        self, connection_id: str, conn_type: str, *, extra: dict[str, Any] | None = None, **fields: Any
    ) -> None:
        """Create a connection through the REST API (``fields``: host, port, password, ...)."""
        body = {"connection_id": connection_id, "conn_type": conn_type, **fields}
        if extra is not None:
            body["extra"] = json.dumps(extra)
        self.api("POST", "/connections", json=body)

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

    def task_logs(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, str]:
        """Every log file of a task in this run (tries and trigger logs), by file name."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder /= f"map_index={map_index}"
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


def _processes_with(marker: str) -> list[int]:
    """PIDs of the processes whose environment holds ``marker`` (``NAME=value``)."""
    wanted, found = marker.encode() + b"\0", []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if wanted in environ.read_bytes():
                found.append(int(environ.parent.name))
    return [pid for pid in found if pid != os.getpid()]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _descendants(pid: int) -> list[int]:
    """PIDs of every process below ``pid`` in the process tree."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (name) state ppid ...": the name may hold spaces and parentheses.
            children[int(stat.read_text().rsplit(")", 1)[1].split()[1])].append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
