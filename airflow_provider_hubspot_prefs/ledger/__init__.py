"""The ledger: one row per input line with what really happened to it, and the state behind it.

This package is the one owner of the ledger's format (columns, outcomes), of reading inputs into
numbered records, of the work store and checkpoint that let a retry resume, and of the ledger files
(atomic writes, merge, summary, confirmation). It uses the client's vocabulary (statuses, legal
bases, address validation) and nothing above it; of Airflow, only ``ObjectStoragePath`` for files
at a URI (``storage``).
"""

from .files import confirm_submitted, merge_ledgers, read_rows, submitted_addresses, summarize
from .inputs import InputRecord, UnreadableInputError, describe_problem, examine
from .outcomes import DONE_OUTCOMES, LEDGER_COLUMNS, Outcome, Row

__all__ = [
    "DONE_OUTCOMES",
    "LEDGER_COLUMNS",
    "InputRecord",
    "Outcome",
    "Row",
    "UnreadableInputError",
    "confirm_submitted",
    "describe_problem",
    "examine",
    "merge_ledgers",
    "read_rows",
    "submitted_addresses",
    "summarize",
]
