"""Real input files, read as a person means them; the ledger invariant holds for each.

The CSV files here are written by a real spreadsheet (LibreOffice Calc, headless, installed by
``scripts/install-spreadsheet``): UTF-16 with a byte-order mark as a "Unicode text" export, and
Windows-1252. Excel's "CSV UTF-8" (BOM + CRLF) is written byte for byte as Excel writes it. Each file
goes through a DAG run of the batch operator against the emulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..dag_support import ledger_rows, provider_dag, states
from ..ledger_support import check_truth
from ..spreadsheet import spreadsheet_export

EXCEL_BOM = b"\xef\xbb\xbf"


@pytest.fixture(autouse=True)
def _airflow(airflow_db, hubspot_connection):
    """DAG runs need the migrated DB and a connection to the emulator."""


def run_file(tmp: Path, path: Path, **params: str) -> tuple[str, list[dict[str, str]]]:
    ledger = tmp / "ledger.csv"
    run = provider_dag("test_batch_unsubscribe_file").test(
        # Every param given: dag.test() keeps an earlier run's conf as the DAG's param values.
        run_conf={
            "input_path": str(path),
            "ledger_path": str(ledger),
            "csv_column": "",
            "encoding": "",
            **params,
        }
    )
    return states(run)["unsubscribe"], ledger_rows(ledger)


def sent_addresses(emulator) -> set[str]:
    return {email for email, _ in emulator.backend.changes}


def test_spreadsheet_unicode_text_export_with_bom_empty_row_and_empty_cell(emulator, tmp_path):
    cells = [
        ["Name", "Email"],
        ["Jane", " Jane.Doe@Example.com "],
        ["", ""],
        ["Bob", ""],
        ["Ann, Jr.", "ann@example.org"],
        ["Zed", "jane.doe@example.com"],
        ["Eve", "eve@@example.com"],
    ]
    export = spreadsheet_export(tmp_path, cells, 65535)  # UTF-16, with a byte-order mark
    assert export.read_bytes()[:2] == b"\xff\xfe"
    state, rows = run_file(tmp_path, export, csv_column="Email")
    assert state == "success"
    # Every record of the sheet has its row, numbered by its line in the file (the header is line 1).
    check_truth(emulator, rows, [c[1] for c in cells[1:]], first_line=2)
    assert [(r["line"], r["outcome"], r["reason"]) for r in rows] == [
        ("2", "unsubscribed", "UNSUBSCRIBE_FROM_ALL_OCCURRED"),
        ("3", "invalid_input", "empty cell in column 'Email'"),
        ("4", "invalid_input", "empty cell in column 'Email'"),
        ("5", "unsubscribed", "UNSUBSCRIBE_FROM_ALL_OCCURRED"),
        ("6", "duplicate", "same address as line 2"),
        ("7", "invalid_input", "not a valid email address: has 2 '@' (positions 4, 5)"),
    ]
    assert sent_addresses(emulator) == {"jane.doe@example.com", "ann@example.org"}


def test_excel_csv_utf8_bom_header_and_first_address(emulator, tmp_path):
    # Excel's "CSV UTF-8": a BOM before the header, CRLF line ends, an empty row as an empty line.
    path = tmp_path / "excel.csv"
    path.write_bytes(EXCEL_BOM + b"email\r\nfirst.bom@example.com\r\n\r\nsecond@example.com\r\n")
    state, rows = run_file(tmp_path, path, csv_column="email")
    assert state == "success"
    check_truth(emulator, rows, ["first.bom@example.com", "", "second@example.com"], first_line=2)
    assert [r["outcome"] for r in rows] == ["unsubscribed", "invalid_input", "unsubscribed"]
    # The first address went to HubSpot without the BOM: the real contact is opted out.
    assert ("first.bom@example.com", 0) in emulator.backend.wide
    assert not [email for email, _ in emulator.backend.wide if "\ufeff" in email]


def test_plain_file_with_bom_blank_lines_and_invisible_characters(emulator, tmp_path):
    lines = [
        "first@example.com",  # after the BOM
        "",
        "nbsp@example.com\u00a0",  # a no-break space copied along: trimmed, never sent
        "",
        "",
        "jane\u200b@example.com",  # a zero-width space inside: refused, naming it
        "j\u0430ne@example.com",  # Cyrillic a: a look-alike address, refused
        "FIRST@example.com",
    ]
    path = tmp_path / "withdrawals.txt"
    path.write_bytes(EXCEL_BOM + "\r\n".join(lines).encode() + b"\r\n")
    state, rows = run_file(tmp_path, path)
    assert state == "success"
    check_truth(emulator, rows, lines)
    assert [(r["outcome"], r["reason"]) for r in rows] == [
        ("unsubscribed", "UNSUBSCRIBE_FROM_ALL_OCCURRED"),
        ("invalid_input", "empty line"),
        ("unsubscribed", "UNSUBSCRIBE_FROM_ALL_OCCURRED"),
        ("invalid_input", "empty line"),
        ("invalid_input", "empty line"),
        ("invalid_input", "not a valid email address: contains U+200B ZERO WIDTH SPACE at position 5"),
        (
            "invalid_input",
            "not a valid email address: mixes scripts: U+0430 CYRILLIC SMALL LETTER A at position 2 "
            "among Latin letters (a look-alike?)",
        ),
        ("duplicate", "same address as line 1"),  # the line it repeats, counting blank lines
    ]
    assert sent_addresses(emulator) == {"first@example.com", "nbsp@example.com"}


def test_a_line_that_is_not_utf8_is_ledgered_and_the_rest_proceeds(emulator, tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"ok1@example.com\ncaf\xe9@example.com\nok2@example.com\n")
    state, rows = run_file(tmp_path, path)
    assert state == "success"
    check_truth(emulator, rows, ["ok1@example.com", "caf\\xe9@example.com", "ok2@example.com"])
    assert rows[1]["outcome"] == "invalid_input"
    assert rows[1]["reason"].startswith(
        "not a valid email address: not valid UTF-8 (byte 0xE9 at position 4); set encoding="
    )


def test_spreadsheet_windows_1252_export_needs_and_honours_encoding(emulator, tmp_path):
    cells = [["email"], ["josé@example.com"], ["zoë@example.org"], ["plain@example.com"]]
    export = spreadsheet_export(tmp_path, cells, 1)  # Windows-1252
    assert b"jos\xe9@" in export.read_bytes()

    state, rows = run_file(tmp_path / "as-utf8", export, csv_column="email")
    assert state == "success"  # read as UTF-8: two lines refused, named, and the rest sent
    assert [r["outcome"] for r in rows] == ["invalid_input", "invalid_input", "unsubscribed"]
    assert "set encoding=" in rows[0]["reason"]

    emulator.backend.reset()
    state, rows = run_file(tmp_path / "as-1252", export, csv_column="email", encoding="cp1252")
    assert state == "success"
    check_truth(emulator, rows, ["josé@example.com", "zoë@example.org", "plain@example.com"], first_line=2)
    assert sent_addresses(emulator) == {"josé@example.com", "zoë@example.org", "plain@example.com"}


def test_a_utf8_bom_wins_over_an_encoding_set_for_other_files(emulator, tmp_path):
    """A DAG set up for Windows-1252 sheets meets one saved as Excel's "CSV UTF-8": read as cp1252,
    "josé" would become "josÃ©" and the header "ï»¿email". The BOM says what wrote the file."""
    path = tmp_path / "excel-utf8.csv"
    path.write_bytes(EXCEL_BOM + "email\r\njosé@example.com\r\nzoë@example.org\r\n".encode())
    state, rows = run_file(tmp_path, path, csv_column="email", encoding="cp1252")
    assert state == "success"
    check_truth(emulator, rows, ["josé@example.com", "zoë@example.org"], first_line=2)
    assert [r["outcome"] for r in rows] == ["unsubscribed", "unsubscribed"]
    assert sent_addresses(emulator) == {"josé@example.com", "zoë@example.org"}


def test_plain_address_shortcut_agrees_with_every_check():
    """``examine`` skips the per-character checks for plain ASCII addresses; it must never let
    through what those checks refuse, nor refuse what they accept."""
    import random
    import re

    from airflow_provider_hubspot_prefs.ledger import inputs

    def by_the_checks(value: str) -> tuple[str | None, str | None]:
        trimmed = inputs._EDGES.sub("", value)
        if not trimmed:
            return None, "empty line"
        problem = inputs.describe_problem(trimmed)
        return (None, f"not a valid email address: {problem}") if problem else (trimmed.lower(), None)

    pieces = [
        "a",
        "Z",
        "0",
        ".",
        "..",
        "-",
        "_",
        "+",
        "@",
        " ",
        "\t",
        "\u00e9",
        "\u0430",
        "\u200b",
        "\ufeff",
        "<",
        ">",
        '"',
        ",",
        ";",
        ":",
        "\\",
        "[",
        "'",
        "!",
        "`",
        "\udc81",
        "example",
        ".com",
        "\u212f",
    ]
    rng = random.Random(12)
    values = [
        "a@b.co",
        "x@y",
        "@b.co",
        "a@.co",
        "a@b..co",
        "a@b.co.",
        "A.B@C.D",
        "a" * 250 + "@b.co",
        "a" * 240 + "@b.co",
        ".a@b.co",
        "a@-.-",
        "a@b.c-",
    ]
    values += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 9))) for _ in range(20_000)]
    plain = ["a", "Z", "0", ".", "-", "_", "+", "'", "example", ".com"]

    def part() -> str:
        return "".join(rng.choice(plain if rng.random() < 0.9 else pieces) for _ in range(rng.randint(1, 4)))

    values += [f"{part()}@{part()}" for _ in range(20_000)]
    shortcut = 0
    for value in values:
        assert inputs.examine(value) == by_the_checks(value), repr(value)
        shortcut += bool(len(value) <= 254 and inputs._PLAIN_ADDRESS.fullmatch(value))
    assert shortcut > 500  # the shortcut is exercised, not only the checks
    assert re.fullmatch(r"[\x21-\x7e]+", "".join(v for v in values if inputs._PLAIN_ADDRESS.fullmatch(v)))


# Each address with what ``examine`` says of it: None when it is sent.
SCRIPTS_PER_PART = [
    ("用户@example.com", None),  # an all-Han local part at an ASCII domain (SMTPUTF8)
    ("иван@example.com", None),  # an all-Cyrillic local part
    ("jane@пример.рф", None),  # all-Cyrillic domain labels under a Latin local part
    ("たなか太郎@example.jp", None),  # Japanese: Hiragana with Han
    ("タナカー@example.jp", None),  # Katakana with its prolonged sound mark
    ("홍길동@example.kr", None),  # Korean: Hangul
    ("田中tanaka@example.jp", None),  # Latin with Han (UTS #39 "highly restrictive" allows it)
    ("josé.müller@example.de", None),
    (
        "j\u0430ne@example.com",  # a Cyrillic a inside a Latin word
        "mixes scripts: U+0430 CYRILLIC SMALL LETTER A at position 2 among Latin letters (a look-alike?)",
    ),
    (
        "jane@ex\u0430mple.com",  # inside a domain label
        "mixes scripts: U+0430 CYRILLIC SMALL LETTER A at position 8 among Latin letters (a look-alike?)",
    ),
    (
        "\u0440aypal@example.com",  # the look-alike letter first
        "mixes scripts: U+0440 CYRILLIC SMALL LETTER ER at position 1 among Latin letters (a look-alike?)",
    ),
    (
        "\u03c1aypal@example.com",  # Greek rho
        "mixes scripts: U+03C1 GREEK SMALL LETTER RHO at position 1 among Latin letters (a look-alike?)",
    ),
    (
        "ив\u03bfн@example.com",  # a Greek omicron among Cyrillic letters
        "mixes scripts: U+03BF GREEK SMALL LETTER OMICRON at position 3 among Cyrillic letters "
        "(a look-alike?)",
    ),
    (
        "田中tanaka\u044f@example.jp",  # Latin with Han is one thing, a Cyrillic letter besides another
        "mixes scripts: U+044F CYRILLIC SMALL LETTER YA at position 9 among Latin letters (a look-alike?)",
    ),
]


@pytest.mark.parametrize(("address", "problem"), SCRIPTS_PER_PART, ids=[a for a, _ in SCRIPTS_PER_PART])
def test_scripts_are_judged_within_the_local_part_and_each_domain_label(address, problem):
    """Issue 23 item 8: UTS #39's mixed-script rule holds within each part of an address, not across
    the '@' or the dots: a real person's address is sent, a look-alike letter inside a word is not."""
    from airflow_provider_hubspot_prefs.ledger import examine

    expected = (address.lower(), None) if problem is None else (None, f"not a valid email address: {problem}")
    assert examine(address) == expected


# Real people's addresses, each sent as written (review 23 finding 3: the first seven were refused).
REAL_ADDRESSES = {
    "Thai SARA AM": "สำราญ@example.co.th",
    "Thai SARA AM after a tone mark": "น้ำ@example.com",
    "Lao AM": "ຄຳ@example.la",
    "precomposed Devanagari ZA (canonical)": "\u095b\u093e\u0915\u093f\u0930@example.in",
    "precomposed Bengali YYA (canonical)": "\u099c\u09df@example.bd",
    "Persian ZWNJ between joining letters": "\u0639\u0644\u06cc\u200c\u0631\u0636\u0627@example.ir",
    "Sinhala ZWJ after the virama": "\u0dc1\u0dca\u200d\u0dbb\u0dd3@example.lk",
    "Devanagari ZWNJ after the virama": "\u0915\u094d\u200c\u0937@example.in",
    "Han": "用户@example.com",
    "Thai": "สมชาย@example.co.th",
    "Devanagari": "राम@example.in",
    "Arabic": "محمد@example.com",
    "Arabic with Arabic-Indic digits": "محمد٢٠٢٤@example.com",
    "Urdu heh doachashmee": "\u0645\u062d\u0645\u062f\u06be@example.pk",
    "Hebrew": "דוד@example.co.il",
    "Cyrillic domain": "info@россия.рф",
    "punycode domain": "info@xn--h1alffa9f.xn--p1ai",
    "Japanese": "やまだ太郎@例え.jp",
    "Korean": "홍길동@example.kr",
    "Greek": "αλέξης@example.gr",
    "Georgian": "გიორგი@example.ge",
    "Ethiopic": "አበበ@example.et",
    "Tamil": "முருகன்@example.in",
    "Sinhala": "සුනිල්@example.lk",
    "Armenian": "արամ@example.am",
    "Burmese": "မောင်@example.mm",
    "Khmer": "សុខា@example.kh",
    "Hawaiian okina": "ka\u02bbiulani@example.com",
    "emoji": "i❤️u@example.com",
}


@pytest.mark.parametrize("address", REAL_ADDRESSES.values(), ids=REAL_ADDRESSES.keys())
def test_real_addresses_in_any_script_are_sent(address):
    from airflow_provider_hubspot_prefs.ledger import examine

    assert examine(address) == (address.lower(), None)


# Look-alikes and invisible characters stay refused, named by position.
REFUSED = {
    "fullwidth a": (
        "j\uff41ne@example.com",
        "contains U+FF41 FULLWIDTH LATIN SMALL LETTER A at position 2, a look-alike of 'a'",
    ),
    "mathematical bold a": (
        "\U0001d41ane@example.com",
        "contains U+1D41A MATHEMATICAL BOLD SMALL A at position 1, a look-alike of 'a'",
    ),
    "ligature fi": (
        "\ufb01sh@example.com",
        "contains U+FB01 LATIN SMALL LIGATURE FI at position 1, a look-alike of 'fi'",
    ),
    "Thai AM sign with a fullwidth letter": (
        "สำ\uff41@example.com",
        "contains U+FF41 FULLWIDTH LATIN SMALL LETTER A at position 3, a look-alike of 'a'",
    ),
    "ZWJ between Latin letters": (
        "ja\u200dne@example.com",
        "contains U+200D ZERO WIDTH JOINER at position 3",
    ),
    "ZWNJ between Latin letters": (
        "ja\u200cne@example.com",
        "contains U+200C ZERO WIDTH NON-JOINER at position 3",
    ),
    "ZWJ after a Sinhala letter, not a virama": (
        "\u0dc1\u200d\u0dbb\u0dd3@example.lk",
        "contains U+200D ZERO WIDTH JOINER at position 2",
    ),
    "ZWNJ after an Arabic alef, which joins only on its right": (
        "\u0627\u200c\u0628\u0628@example.com",
        "contains U+200C ZERO WIDTH NON-JOINER at position 2",
    ),
    "ZWNJ at the end of a Persian local part": (
        "\u0639\u0644\u06cc\u200c@example.ir",
        "contains U+200C ZERO WIDTH NON-JOINER at position 4",
    ),
    "ZWNJ across a dot": (
        "\u0644\u06cc\u200c.\u0631\u0636@example.ir",
        "contains U+200C ZERO WIDTH NON-JOINER at position 3",
    ),
    "zero width space": ("jane\u200b@example.com", "contains U+200B ZERO WIDTH SPACE at position 5"),
    "Cyrillic a among Latin letters": (
        "p\u0430ypal@example.com",
        "mixes scripts: U+0430 CYRILLIC SMALL LETTER A at position 2 among Latin letters (a look-alike?)",
    ),
    "Kelvin sign among Cyrillic letters": (
        "\u0438\u0432\u212a\u0430\u043d@example.com",
        "mixes scripts: U+212A KELVIN SIGN at position 3 among Cyrillic letters (a look-alike?)",
    ),
}


@pytest.mark.parametrize(("address", "problem"), REFUSED.values(), ids=REFUSED.keys())
def test_look_alikes_and_misplaced_joiners_are_refused(address, problem):
    from airflow_provider_hubspot_prefs.ledger import examine

    assert examine(address) == (None, f"not a valid email address: {problem}")


def test_an_all_han_address_is_opted_out_in_hubspot(emulator, tmp_path):
    """The opt-out of 用户@example.com reaches HubSpot (over HTTP, to the emulator) and the ledger
    says so; the look-alike on the next line is refused before any request."""
    lines = ["用户@example.com", "j\u0430ne@example.com"]
    path = tmp_path / "withdrawals.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    state, rows = run_file(tmp_path, path)
    assert state == "success"
    check_truth(emulator, rows, lines)
    assert [r["outcome"] for r in rows] == ["unsubscribed", "invalid_input"]
    assert sent_addresses(emulator) == {"用户@example.com"}
