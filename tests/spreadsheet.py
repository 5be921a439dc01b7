"""Files written by a real spreadsheet (LibreOffice Calc, headless; ``scripts/install-spreadsheet``)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def spreadsheet_export(tmp: Path, cells: list[list[str]], charset: int) -> Path:
    """Have LibreOffice Calc read ``cells`` and save them as CSV in ``charset`` (its encoding number)."""
    if shutil.which("soffice") is None:
        if os.environ.get("CI"):
            pytest.fail("soffice is missing: scripts/install-spreadsheet installs it")
        pytest.skip("LibreOffice is not installed (scripts/install-spreadsheet)")
    source = tmp / "sheet.csv"
    with open(source, "w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(cells)
    target = tmp / "export"
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation=file://{tmp / 'lo-profile'}",
            "--headless",
            "--infilter=CSV:44,34,76,1,,0,false,false",
            "--convert-to",
            f"csv:Text - txt - csv (StarCalc):44,34,{charset},1,,0,false,true,false,false,false",
            "--outdir",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    (exported,) = target.glob("*.csv")
    return exported
