"""Where the batch and export operators' inputs come from: a list (or XCom) or a file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from ..ledger import InputRecord


def input_records(
    subscribers: Iterable[str] | str | None,
    input_path: str | None,
    csv_column: str | None,
    encoding: str | None,
    input_range: Sequence[int] | None = None,
    requested_at_column: str | None = None,
) -> Iterator[InputRecord]:
    """The numbered records of ``subscribers`` or of the file at ``input_path`` (see ``ledger.inputs``)."""
    from ..ledger.inputs import open_input, records_from_text, records_from_values

    start, stop = (None, None) if not input_range else (int(input_range[0]), int(input_range[1]))
    if subscribers is not None and input_path:
        raise AirflowFailException("Give subscribers or input_path, not both.")
    if subscribers is not None:
        items = [subscribers] if isinstance(subscribers, str) else subscribers
        yield from records_from_values(islice(items, start, stop), start=start or 0)
        return
    if not input_path:
        raise AirflowFailException("Give subscribers or input_path: there is no input.")
    with open_input(input_path, encoding or None) as stream:
        records = records_from_text(stream, csv_column or None, requested_at_column or None)
        yield from islice(records, start, stop)
