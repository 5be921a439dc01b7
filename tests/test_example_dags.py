"""The example DAGs: they import cleanly, and each one runs end to end against the emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from .dag_support import ROOT, example_dag, ledger_rows, states, xcom

EXAMPLES = sorted(p.stem for p in (ROOT / "example_dags").glob("*.py"))


def test_dagbag_imports_every_example_without_errors(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "example_dags"))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == set(EXAMPLES)


def test_parsing_does_not_import_clients_or_the_emulator():
    code = (
        "import sys, airflow.sdk; before = set(sys.modules);"
        "import airflow_provider_hubspot_prefs.operators, airflow_provider_hubspot_prefs.sensors,"
        " airflow_provider_hubspot_prefs.triggers;"
        "print('\\n'.join(sorted(set(sys.modules) - before)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = [
        m
        for m in loaded
        if m.startswith(
            (
                "airflow_provider_hubspot_prefs.client",
                "airflow_provider_hubspot_prefs.hooks",
                "airflow_provider_hubspot_prefs.emulator",
                "fastapi",
                "uvicorn",
            )
        )
    ]
    assert heavy == []


@pytest.fixture
def _airflow(airflow_db, hubspot_connection):
    """Example runs need the migrated DB and a connection to the emulator."""


@pytest.mark.usefixtures("_airflow")
def test_gdpr_unsubscribe_flagship(emulator, tmp_path):
    emulator.control("PATCH", "config", json={"processing_delay_ms": 500})
    source = tmp_path / "withdrawals.txt"
    emulator.control(
        "POST", "contacts", json={"emails": ["bob@example.org"], "unsubscribed_at": "2026-11-01T08:00:00Z"}
    )
    source.write_text(
        "alice@example.com\nBOB@example.org\nnew.one@example.com\nnot-valid\nalice@example.com\n"
    )
    run = example_dag("hubspot_gdpr_unsubscribe").test(
        run_conf={"input_path": str(source), "ledger_dir": str(tmp_path / "ledgers")}
    )
    assert states(run) == {
        "unsubscribe_all": "success",
        "wait_until_complete": "success",
        "report": "success",
    }
    report = xcom(run, "report")
    # Written PENDING, then confirmed by the sensor: bob was unsubscribed weeks before this run.
    assert report["outcomes"] == {
        "unsubscribed": 2,
        "already_unsubscribed": 1,
        "invalid_input": 1,
        "duplicate": 1,
    }
    folder = next((tmp_path / "ledgers").glob("*/report.json")).parent
    page = report.pop("report_html")
    assert json.loads((folder / "report.json").read_text()) == report
    # The HTML page beside it (linked from the ledger's view in the UI): counts, no address.
    assert page == f"file://{folder / 'report.html'}"  # as ObjectStoragePath spells it
    html = (folder / "report.html").read_text()
    assert "<svg" in html and ">already_unsubscribed<" in html and "not a valid email address" in html
    assert "alice" not in html and "example.com" not in html.replace(str(tmp_path), "")
    assert report["deadlines"]["counts"] == {"none": 5}  # plain lines say nothing of when people asked
    rows = ledger_rows(report["ledger_path"])
    assert [r["reason"] for r in rows if r["outcome"] == "already_unsubscribed"] == [
        "confirmed COMPLETE; HubSpot's status dates from before this run sent it"
    ]


@pytest.mark.usefixtures("_airflow")
def test_consent_update(emulator):
    run = example_dag("hubspot_consent_update").test(
        run_conf={"subscribers": ["alice@example.com", "dave@example.com"], "subscription_id": 1003}
    )
    assert states(run) == {"record_consent": "success"}
    assert xcom(run, "record_consent")["outcomes"] == {"status_set": 2}
    record = emulator.backend.statuses[("dave@example.com", 1003)]
    assert record.legal_basis == "CONSENT_WITH_NOTICE" and run.run_id in record.legal_basis_explanation


@pytest.mark.usefixtures("_airflow")
def test_large_list_fanout_merges_chunk_ledgers(emulator, tmp_path):
    people = [f"bulk{i:04d}@example.com" for i in range(1_050)]
    source = tmp_path / "big.txt"
    source.write_text("\n".join([*people, "oops"]) + "\n")
    run = example_dag("hubspot_large_list_fanout").test(
        run_conf={"input_path": str(source), "ledger_dir": str(tmp_path / "out"), "chunk_size": 300}
    )
    ran = states(run)
    assert ran["split"] == ran["merge"] == "success"
    merged = xcom(run, "merge")
    assert merged["total_inputs"] == 1_051
    assert merged["outcomes"] == {"unsubscribed": 1_050, "invalid_input": 1}
    rows = ledger_rows(merged["ledger_path"])
    assert [int(r["line"]) for r in rows] == list(range(1, 1_052))
    assert Counter(r["outcome"] for r in rows)["unsubscribed"] == 1_050
    assert all((p, 0) in emulator.backend.wide for p in people)


@pytest.mark.usefixtures("_airflow")
def test_status_export_announces_its_file_and_the_report_reads_it(emulator, tmp_path):
    """The export's asset event carries the counts and the path; the report DAG scheduled on the
    asset reads them from its inlet events."""
    import csv

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    source = tmp_path / "contacts.txt"
    source.write_text("alice@example.com\nbob@example.org\nnobody@example.com\nnot-valid\n")
    run = example_dag("hubspot_status_export").test(
        run_conf={"input_path": str(source), "export_dir": str(tmp_path / "exports")}
    )
    assert states(run) == {"export_statuses": "success"}
    summary = xcom(run, "export_statuses")
    with open(summary["output_path"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["subscriber_id"] for r in rows} == {
        "alice@example.com",
        "bob@example.org",
        "nobody@example.com",
    }
    with create_session() as session:
        events = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "hubspot_prefs_status_export", AssetEvent.source_run_id == run.run_id)
        ).all()
        assert len(events) == 1
        extra = dict(events[0].extra)
    assert extra["output_path"] == summary["output_path"] and extra["contacts"] == 3
    assert extra["not_found"] == 1 and extra["invalid_input"] == 1 and extra["rows"] == len(rows)
    assert extra["uri"] == Path(summary["output_path"]).as_uri()
    assert "alice" not in json.dumps(extra)  # counts and the path, never an address

    report = example_dag("hubspot_status_report").test()
    assert states(report) == {"report": "success"}
    assert xcom(report, "report") == extra


@pytest.mark.usefixtures("_airflow")
def test_consent_sync_plans_then_writes_only_what_differs_and_announces_its_ledger(
    emulator, tmp_path, monkeypatch
):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from .consent_support import consent_table

    table = consent_table(emulator.backend, tmp_path / "consent.db", contacts=300)
    monkeypatch.setenv("AIRFLOW_CONN_CONSENT_WAREHOUSE", table.connection())
    emulator.backend.status_writes.clear()
    conf = {
        "consent_conn_id": "consent_warehouse",
        "ledger_dir": str(tmp_path / "sync"),
        "max_changes": 1000,
        "journal_dir": str(tmp_path / "journal"),
    }

    run = example_dag("hubspot_consent_sync").test(run_conf=conf)

    assert states(run) == {
        "plan": "success",
        "review_plan": "success",
        "sync": "success",
        "report": "success",
    }
    assert xcom(run, "review_plan") == len(table.writes)
    assert set(emulator.backend.status_writes) == table.writes
    assert len(emulator.backend.status_writes) == len(table.writes)  # each once
    for key in table.kept:  # re-subscribed in HubSpot after the table's decision: still subscribed
        assert emulator.backend.statuses[key].status == "SUBSCRIBED"
    night = xcom(run, "report")
    assert night["rows"] == table.rows and night["written"] == len(table.writes)
    assert night["outcomes"] == {
        "already_in_state": table.rows - len(table.writes) - len(table.kept) - 1,
        "status_set": len(table.writes),
        "kept_newer_in_hubspot": len(table.kept),
        "invalid_input": 1,
    }
    plan = ledger_rows(Path(night["ledger_path"]).with_name("plan.csv"))
    synced = ledger_rows(night["ledger_path"])
    assert [r["line"] for r in plan if r["outcome"] == "not_attempted"] == [
        r["line"] for r in synced if r["outcome"] == "status_set"
    ]
    with create_session() as session:
        (event,) = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "hubspot_prefs_consent_sync", AssetEvent.source_run_id == run.run_id)
        ).all()
        assert (
            event.extra["outcomes"] == night["outcomes"]
            and event.extra["ledger_path"] == night["ledger_path"]
        )

    # A table that would change more than max_changes rows stops before anything is written.
    emulator.backend.status_writes.clear()
    for person, subscription, _ in table.writes:
        emulator.backend.set_history(person, subscription, "SUBSCRIBED", "2026-10-01T09:00:00.000Z")
    stopped = example_dag("hubspot_consent_sync").test(run_conf={**conf, "max_changes": 5})
    assert states(stopped) == {
        "plan": "success",
        "review_plan": "failed",
        "sync": "upstream_failed",
        "report": "upstream_failed",
    }
    assert emulator.backend.status_writes == []
