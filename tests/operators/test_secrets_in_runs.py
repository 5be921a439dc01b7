"""The flagship DAG run leaks neither the token nor an address into task output or XCom."""

from __future__ import annotations

import json

from ..dag_support import example_dag, states

SECRET = "pat-na1-0123-secret-token-in-run"


def test_flagship_run_keeps_the_token_and_addresses_out_of_output_and_xcom(
    emulator, airflow_db, monkeypatch, tmp_path, capfd
):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    emulator.control("POST", "tokens", json={"token": SECRET})
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_PREFS_DEFAULT",
        json.dumps(
            {
                "conn_type": "hubspot_prefs",
                "password": SECRET,
                "extra": {"base_url": emulator.url, "rate_limit": 0},
            }
        ),
    )
    people = ["jane.private@example.com", "john.hidden@example.org"]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(people) + "\n")
    run = example_dag("hubspot_gdpr_unsubscribe").test(
        run_conf={"input_path": str(source), "ledger_dir": str(tmp_path / "ledgers")}
    )
    assert set(states(run).values()) == {"success"}
    output = "".join(capfd.readouterr())
    with create_session() as session:
        xcoms = [
            json.dumps(XComModel.deserialize_value(x), default=str)
            for x in session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id))
        ]
    assert xcoms  # the tasks did push their summaries
    assert "Ledger written to" in output  # task logs were captured: their absence below means something
    for text in [output, *xcoms]:
        assert SECRET not in text
        assert not any(person in text for person in people)
