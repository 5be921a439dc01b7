"""The ledger index: an address's rows found across ledgers and runs, never a row of another address.

Real ledger files in tmp_path, written as the ledger package writes them (``write_atomically`` and
``csv.writer`` over ``LEDGER_COLUMNS``), real segments, real processes for the key file race.
"""

from __future__ import annotations

import csv
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import airflow  # noqa: F401 - Airflow binds its settings to the session's home before a test moves it
import pytest

from airflow_provider_hubspot_prefs.ledger import LEDGER_COLUMNS, Outcome, confirm_submitted, read_rows
from airflow_provider_hubspot_prefs.ledger.files import write_atomically
from airflow_provider_hubspot_prefs.ledger.index import (
    MAGIC,
    RECORD_SIZE,
    IndexUnavailable,
    LedgerEntry,
    address_key,
    entries,
    find_entry,
    index_root,
    index_secret,
    key_file,
    lookup,
    segment_location,
    write_segment,
)

SECRET = b"0123456789abcdef0123456789abcdef"
OLD_COLUMNS = LEDGER_COLUMNS[:10]  # the header of ledgers written before issue 25
NEW_COLUMNS = (*OLD_COLUMNS, "requested_at", "confirmed_at")


@pytest.fixture(autouse=True)
def _no_configured_index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test its own AIRFLOW_HOME for the key file, and no index key or path from the environment."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    monkeypatch.delenv("AIRFLOW__HUBSPOT_PREFS__INDEX_KEY", raising=False)
    monkeypatch.delenv("AIRFLOW__HUBSPOT_PREFS__INDEX_PATH", raising=False)


def row(line: int, text: str, outcome: str = "unsubscribed", **fields: str) -> dict[str, str]:
    """A ledger row as the batch operator writes it: subscriber_id is the normalized address."""
    from airflow_provider_hubspot_prefs.ledger.inputs import examine

    address = examine(text)[0] or ""
    reason = "" if address else "not a valid email address"
    return {
        "line": str(line),
        "input": text,
        "subscriber_id": address,
        "outcome": outcome,
        "reason": reason,
    } | fields


def write_ledger(location: Any, rows: list[dict[str, str]], columns: tuple[str, ...] = LEDGER_COLUMNS) -> str:
    def write(out: Any) -> None:
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows([r.get(c, "") for c in columns] for r in rows)

    write_atomically(location, write)
    return str(location)


def entry(
    ledger: str, dag_id: str = "nightly", run_id: str = "scheduled__2026-03-02", **kw: Any
) -> LedgerEntry:
    return LedgerEntry(
        dag_id=dag_id,
        run_id=run_id,
        task_id=kw.pop("task_id", "batch"),
        map_index=-1,
        ledger_path=ledger,
        **kw,
    )


def people(prefix: str, count: int) -> list[str]:
    return [f"{prefix}.{i:04d}@example.com" for i in range(count)]


def rows_of(ledger: str, address: str) -> list[dict[str, str]]:
    return [r for r in read_rows(ledger) if r["subscriber_id"] == address]


def test_one_address_across_ledgers_and_runs(tmp_path):
    root = tmp_path / "index"
    wanted = "Person.One@Example.com"
    written = []
    for day in range(1, 4):
        run_id = f"scheduled__2026-03-0{day}T00:00:00+00:00"  # ":" and "+" in a run id: one folder still
        for chunk in (0, 1):
            lines = people(f"d{day}c{chunk}", 200)
            if (day + chunk) % 2 == 1:  # the address in one of the two ledgers of each run
                lines.insert(50 + day, wanted)
            if day == 3 and chunk == 0:
                lines.append(f"  {wanted.upper()}  ")  # a duplicate line of the same person
            ledger = write_ledger(
                tmp_path / f"l{day}{chunk}.csv", [row(i + 1, t) for i, t in enumerate(lines)]
            )
            e = LedgerEntry(
                "nightly", run_id, "batch", chunk, ledger, hubspot_conn_id="hubspot_prefs_default"
            )
            written.append(write_segment(e, SECRET, root))
    other = write_ledger(tmp_path / "weekly.csv", [row(1, "someone@example.com")])
    write_segment(entry(other, dag_id="weekly"), SECRET, root)

    found = lookup(f" {wanted} ", SECRET, root)
    assert found.searched == 7 and found.stale == [] and found.unreadable == []
    expected = [(w, r) for w in written for r in rows_of(w.ledger_path, "person.one@example.com")]
    assert [(h.entry, h.row) for h in found.hits] == expected
    assert len(found.hits) == 4 and {h.row["input"] for h in found.hits} == {wanted, f"  {wanted.upper()}  "}
    assert all(h.entry.dag_id == "nightly" for h in found.hits)

    nobody = lookup("nobody@example.com", SECRET, root)
    assert nobody.hits == [] and nobody.searched == 7 and nobody.stale == []

    assert len(list(entries(root))) == 7
    run = "scheduled__2026-03-02T00:00:00+00:00"
    assert {(e.run_id, e.map_index) for e in entries(root, dag_id="nightly", run_id=run)} == {
        (run, 0),
        (run, 1),
    }
    first = find_entry(root, "nightly", run, "batch", 1)
    assert first is not None and first.rows == 200 + (1 if (2 + 1) % 2 == 1 else 0)
    assert first.outcomes == {"unsubscribed": first.rows} and first.ledger_size == os.path.getsize(
        first.ledger_path
    )
    assert find_entry(root, "nightly", run, "batch", 2) is None


def test_rows_with_quoted_fields_line_breaks_and_non_ascii_addresses(tmp_path):
    root = tmp_path / "index"
    tricky = [
        row(1, "a@example.com", "failed", reason='HubSpot said "no", then "maybe"', correlation_id="c-1"),
        row(2, "Jörg.Müller@Bücher.example", "failed", reason="line one\nline two,\r\nline three"),
        row(3, "b@example.com", "failed", reason='ends in a quote"', category="VALIDATION_ERROR"),
        row(4, "用户@例子.广告", "unsubscribed"),
        row(5, 'not an address, "quoted"\nsecond line', "invalid_input"),
        row(6, "zoë@example.com", "duplicate", reason=",,,\r\r\n"),
        row(7, "c@example.com"),
    ]
    ledger = write_ledger(tmp_path / "ledger.csv", tricky)
    write_segment(entry(ledger), SECRET, root)

    all_rows = list(read_rows(ledger))
    for text, line in [
        ("a@example.com", 1),
        ("JÖRG.MÜLLER@BÜCHER.EXAMPLE", 2),
        ("b@example.com", 3),
        ("用户@例子.广告", 4),
        ("Zoë@Example.com", 6),
        ("c@example.com", 7),
    ]:
        found = lookup(text, SECRET, root)
        assert [h.row for h in found.hits] == [all_rows[line - 1]], text
        assert found.stale == []


def test_the_index_holds_no_address(tmp_path):
    root = tmp_path / "index"
    addresses = ["jane.doe@example.com", "Jörg.Müller@Bücher.example", "用户@例子.广告"]
    ledger = write_ledger(tmp_path / "ledger.csv", [row(i + 1, a) for i, a in enumerate(addresses)])
    written = write_segment(entry(ledger), SECRET, root)
    segment = Path(segment_location(root, written.dag_id, written.run_id, ledger)).read_bytes()
    assert segment.startswith(MAGIC)
    for address in addresses:
        for text in {address, address.lower()}:
            local = text.split("@")[0]
            for encoded in (text.encode(), local.encode(), local.encode("unicode_escape")):
                assert encoded not in segment


def test_reindexing_replaces_the_segment(tmp_path):
    root = tmp_path / "index"
    ledger = write_ledger(
        tmp_path / "ledger.csv", [row(1, "a@example.com", Outcome.SUBMITTED.value), row(2, "b@example.com")]
    )
    first = write_segment(entry(ledger), SECRET, root)
    assert first.outcomes == {"submitted": 1, "unsubscribed": 1}

    confirm_submitted(
        ledger, {"a@example.com": time.time()}, Outcome.UNSUBSCRIBED, Outcome.ALREADY_UNSUBSCRIBED
    )
    stale = lookup("a@example.com", SECRET, root)
    assert stale.stale == [first] and [h.row["outcome"] for h in stale.hits] == ["unsubscribed"]

    second = write_segment(entry(ledger), SECRET, root)
    assert second.outcomes == {"unsubscribed": 2} and second.written_at >= first.written_at
    assert list(entries(root)) == [second]
    assert len(list(Path(segment_location(root, "nightly", second.run_id, ledger)).parent.iterdir())) == 1
    found = lookup("a@example.com", SECRET, root)
    assert found.stale == [] and [(h.entry, h.row["outcome"]) for h in found.hits] == [
        (second, "unsubscribed")
    ]


def test_a_sensor_reindexing_keeps_the_writer(tmp_path):
    root = tmp_path / "index"
    ledger = write_ledger(tmp_path / "ledger.csv", [row(1, "a@example.com", Outcome.SUBMITTED.value)])
    write_segment(entry(ledger, hubspot_conn_id="conn", extra={"chunk": 1}), SECRET, root)
    confirmed = write_segment(
        entry(ledger, task_id="wait_confirmed", deadline='"10 bd"', extra={"by": "s"}), SECRET, root
    )
    assert (confirmed.task_id, confirmed.map_index, confirmed.hubspot_conn_id) == ("batch", -1, "conn")
    assert confirmed.deadline == '"10 bd"' and confirmed.extra == {"chunk": 1, "by": "s"}
    assert find_entry(root, "nightly", confirmed.run_id, "batch", -1) == confirmed
    assert find_entry(root, "nightly", confirmed.run_id, "wait_confirmed", -1) is None
    assert list(entries(root)) == [confirmed]


def test_a_rewritten_ledger_is_scanned_and_reported_stale(tmp_path):
    root = tmp_path / "index"
    lines = people("p", 50)
    path = tmp_path / "ledger.csv"
    ledger = write_ledger(path, [row(i + 1, a) for i, a in enumerate(lines)])
    indexed = write_segment(entry(ledger), SECRET, root)

    # Rows of other lengths, one more row before the address: every recorded offset is now wrong.
    longer = [row(1, "new.first@example.com", "failed", reason="a much longer reason, " * 3)]
    longer += [row(i + 2, a, "failed", reason=f"reason {'x' * i}") for i, a in enumerate(lines)]
    write_ledger(path, longer)
    found = lookup("p.0030@example.com", SECRET, root)
    assert found.stale == [indexed] and [h.row for h in found.hits] == rows_of(ledger, "p.0030@example.com")
    assert found.hits[0].row["line"] == "32"
    assert lookup("new.first@example.com", SECRET, root).hits[0].row["line"] == "1"

    # Same size, rows in another order: the size cannot tell, the row at the offset does.
    write_ledger(path, [row(i + 1, a) for i, a in enumerate(reversed(lines))])
    assert os.path.getsize(path) == indexed.ledger_size
    found = lookup("p.0030@example.com", SECRET, root)
    assert found.stale == [indexed] and [h.row["line"] for h in found.hits] == ["20"]

    # A segment written with another key (rotated): scanned too, never a miss.
    write_segment(entry(ledger), b"another secret, another index....", root)
    found = lookup("p.0030@example.com", SECRET, root)
    assert len(found.stale) == 1 and [h.row["line"] for h in found.hits] == ["20"]


def test_a_hash_collision_returns_no_other_address(tmp_path):
    """A segment whose record for one address points at another address's row (what a collision of
    two 8-byte keys would look like) gives nothing wrong: the row is checked, the ledger scanned."""
    root = tmp_path / "index"
    ledger = write_ledger(tmp_path / "ledger.csv", [row(i + 1, a) for i, a in enumerate(people("p", 20))])
    indexed = write_segment(entry(ledger), SECRET, root)
    segment = Path(segment_location(root, indexed.dag_id, indexed.run_id, ledger))
    data = segment.read_bytes()
    count = int.from_bytes(data[16:24], "big")
    records_at = len(data) - count * RECORD_SIZE
    records = [data[at : at + RECORD_SIZE] for at in range(records_at, len(data), RECORD_SIZE)]
    forged = address_key("absent@example.com", SECRET) + records[0][8:]  # someone else's row
    segment.write_bytes(
        data[:16]
        + (count + 1).to_bytes(8, "big")
        + data[24:records_at]
        + b"".join(sorted([*records, forged]))
    )

    found = lookup("absent@example.com", SECRET, root)
    assert found.hits == [] and found.stale == [indexed] and found.unreadable == []
    present = lookup("p.0007@example.com", SECRET, root)
    assert [h.row["line"] for h in present.hits] == ["8"] and present.stale == []


def test_only_the_dags_asked_for_are_opened(tmp_path):
    root = tmp_path / "index"
    for dag in ("alpha", "beta"):
        ledger = write_ledger(tmp_path / f"{dag}.csv", [row(1, "a@example.com")])
        write_segment(entry(ledger, dag_id=dag), SECRET, root)
    # A damaged segment in beta's run folder: reported if beta's folder is opened, unseen if not.
    beta_run = Path(segment_location(root, "beta", "scheduled__2026-03-02", "x")).parent
    (beta_run / "damaged.idx").write_bytes(b"not a segment")

    only_alpha = lookup("a@example.com", SECRET, root, dag_ids={"alpha"})
    assert [h.entry.dag_id for h in only_alpha.hits] == ["alpha"]
    assert only_alpha.searched == 1 and only_alpha.unreadable == []
    assert [e.dag_id for e in entries(root, dag_ids={"alpha"})] == ["alpha"]
    assert lookup("a@example.com", SECRET, root, dag_ids=set()).searched == 0

    everything = lookup("a@example.com", SECRET, root)
    assert sorted(h.entry.dag_id for h in everything.hits) == ["alpha", "beta"]
    assert [p for p, _ in everything.unreadable] == [str(beta_run / "damaged.idx")]

    # A segment of beta copied into alpha's folder is still beta's: the header decides.
    alpha_run = Path(segment_location(root, "alpha", "scheduled__2026-03-02", "x")).parent
    beta_segment = next(p for p in beta_run.iterdir() if p.name != "damaged.idx")
    (alpha_run / "copied.idx").write_bytes(beta_segment.read_bytes())
    assert [h.entry.dag_id for h in lookup("a@example.com", SECRET, root, dag_ids={"alpha"}).hits] == [
        "alpha"
    ]
    assert [e.dag_id for e in entries(root, dag_ids={"alpha"})] == ["alpha"]


def test_a_missing_ledger_is_reported_not_skipped(tmp_path):
    root = tmp_path / "index"
    ledger = write_ledger(tmp_path / "ledger.csv", [row(1, "a@example.com")])
    write_segment(entry(ledger), SECRET, root)
    os.unlink(ledger)
    found = lookup("a@example.com", SECRET, root)
    assert found.hits == [] and found.searched == 1
    assert [(p, "missing" in why) for p, why in found.unreadable] == [(ledger, True)]


def test_an_invalid_address_is_refused_without_repeating_it(tmp_path):
    with pytest.raises(ValueError, match="not a valid email address") as refused:
        lookup("secret-person@", SECRET, tmp_path / "index")
    assert "secret-person" not in str(refused.value)


def test_older_and_newer_ledger_headers_and_other_files(tmp_path):
    root = tmp_path / "index"
    old = write_ledger(tmp_path / "old.csv", [row(1, "a@example.com")], OLD_COLUMNS)
    new = write_ledger(
        tmp_path / "new.csv", [row(1, "a@example.com", requested_at="2026-03-02T09:00:00.000Z")], NEW_COLUMNS
    )
    for ledger in (old, new):
        write_segment(entry(ledger, run_id=Path(ledger).stem), SECRET, root)
    by_run = {h.entry.run_id: h.row for h in lookup("a@example.com", SECRET, root).hits}
    assert set(by_run["old"]) == set(LEDGER_COLUMNS) and all(
        by_run["old"][c] == "" for c in LEDGER_COLUMNS[10:]
    )
    assert by_run["new"]["requested_at"] == "2026-03-02T09:00:00.000Z"

    other = tmp_path / "other.csv"
    other.write_text("email,status\r\na@example.com,ok\r\n")
    with pytest.raises(ValueError, match="not a ledger of this provider"):
        write_segment(entry(str(other)), SECRET, root)
    short = tmp_path / "short.csv"
    short.write_text(",".join(LEDGER_COLUMNS) + "\r\n1,a@example.com,a@example.com\r\n")
    with pytest.raises(ValueError, match="has 3 fields"):
        write_segment(entry(str(short)), SECRET, root)


def test_files_and_folders_are_private(tmp_path):
    root = tmp_path / "index"
    ledger = write_ledger(tmp_path / "ledger.csv", [row(1, "a@example.com")])
    written = write_segment(entry(ledger, run_id="manual__x"), SECRET, root)
    segment = Path(segment_location(root, written.dag_id, written.run_id, ledger))
    assert stat.S_IMODE(segment.stat().st_mode) == 0o600
    for folder in (root, segment.parent, segment.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700

    secret = index_secret(root)
    assert stat.S_IMODE(key_file().stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file().parent.stat().st_mode) == 0o700
    assert not key_file().is_relative_to(root) and index_secret(root) == secret and len(secret) == 64


def test_ids_are_one_folder_each(tmp_path):
    root = tmp_path / "index"
    ledger = write_ledger(tmp_path / "ledger.csv", [row(1, "a@example.com")])
    for run_id in ("..", ".", "a/../../b", "manual__2026-03-02T09:00:00+00:00"):
        write_segment(entry(ledger, run_id=run_id), SECRET, root)
    assert sorted(p.name for p in (root / "nightly").iterdir()) == [
        "%2E",
        "%2E.",
        "a%2F..%2F..%2Fb",
        "manual__2026-03-02T09%3A00%3A00%2B00%3A00",
    ]
    assert sorted(e.run_id for e in entries(root)) == sorted(
        [".", "..", "a/../../b", "manual__2026-03-02T09:00:00+00:00"]
    )


def test_the_key_file_is_created_once_by_racing_processes(tmp_path):
    home = tmp_path / "race_home"
    go = tmp_path / "go"
    racer = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from airflow.sdk import conf
        conf.get("hubspot_prefs", "index_key", fallback=None)  # Airflow imported before the start
        from airflow_provider_hubspot_prefs.ledger.index import index_secret
        Path(sys.argv[1]).touch()
        while not os.path.exists({str(go)!r}):
            time.sleep(0.001)
        print(index_secret({str(tmp_path / "index")!r}).decode())
        """
    )
    env = {**os.environ, "AIRFLOW_HOME": str(home)}
    racers = 4
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", racer, str(tmp_path / f"ready{i}")],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(racers)
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(racers)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in processes)
        time.sleep(0.01)
    go.touch()
    keys = {p.communicate(timeout=60)[0].strip() for p in processes}
    assert all(p.returncode == 0 for p in processes)
    written = (home / "hubspot_prefs" / "index.key").read_text().strip()
    assert keys == {written} and len(written) == 64
    assert [p.name for p in (home / "hubspot_prefs").iterdir()] == ["index.key"]  # no temp file left


def test_shared_storage_needs_a_configured_key(tmp_path, monkeypatch):
    """A root on object storage (``local://`` goes through ObjectStoragePath as s3:// does)."""
    root = f"local://{tmp_path}/bucket/index"
    with pytest.raises(
        IndexUnavailable, match=r"index_key \(environment: AIRFLOW__HUBSPOT_PREFS__INDEX_KEY\)"
    ):
        index_secret(root)
    assert not key_file().exists()

    monkeypatch.setenv("AIRFLOW__HUBSPOT_PREFS__INDEX_KEY", " configured-key-of-forty-characters-long \n")
    assert index_secret(root) == b"configured-key-of-forty-characters-long"
    assert index_secret(tmp_path / "local-index") == b"configured-key-of-forty-characters-long"


def test_an_index_on_object_storage(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__HUBSPOT_PREFS__INDEX_PATH", f"local://{tmp_path}/bucket/index")
    monkeypatch.setenv("AIRFLOW__HUBSPOT_PREFS__INDEX_KEY", "k" * 40)
    monkeypatch.setenv("HUBSPOT_PREFS_WORK_DIR", str(tmp_path / "work"))
    assert index_root() == f"local://{tmp_path}/bucket/index"
    secret = index_secret()
    ledger = write_ledger(
        f"local://{tmp_path}/bucket/ledgers/l.csv", [row(1, "a@example.com"), row(2, "b@example.com")]
    )
    written = write_segment(entry(ledger), secret)

    found = lookup("b@example.com", secret)
    assert [(h.entry, h.row) for h in found.hits] == [(written, rows_of(ledger, "b@example.com")[0])]
    assert found.stale == [] and found.unreadable == [] and list(entries(None)) == [written]
    cache = tmp_path / "work" / "index-cache"
    (copy,) = cache.iterdir()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700 and stat.S_IMODE(copy.stat().st_mode) == 0o600
    inode = copy.stat().st_ino
    lookup("a@example.com", secret)
    assert copy.stat().st_ino == inode  # the same segment is not downloaded again

    write_ledger(ledger, [row(1, "a@example.com", "failed", reason="changed"), row(2, "b@example.com")])
    rewritten = write_segment(entry(ledger), secret)
    found = lookup("a@example.com", secret)
    assert [(h.entry, h.row["reason"]) for h in found.hits] == [(rewritten, "changed")] and found.stale == []
    assert [p.name for p in cache.iterdir()] == [copy.name]
