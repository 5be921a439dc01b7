"""What the consent sync does with one desired row, given what HubSpot holds (issue 13's core rule).

HubSpot's answer to a batch read gives each subscription's status with the time it was set, and
the contact's unsubscribed-from-all status with its time. A desired row is written only when
HubSpot differs from it and nothing in HubSpot is newer than the person's decision: a choice the
person made in HubSpot after the warehouse's snapshot (an unsubscribe link clicked yesterday) is
kept, never overwritten. A status the sync itself wrote (``written``: the journal's entry HubSpot's
status matches, see ``ledger.sync_journal``) speaks for the decision it wrote, not for the time of
the write: a later decision that arrives late still wins over it. Resubscribing someone who opted
out of all email needs the caller's explicit opt-in. Nothing here sends anything; ``decide`` is a
pure function, and it is only called with what HubSpot was read to hold: the caller never passes a
default for a status it did not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING

from ..client.models import PublicStatus, PublicWideStatus, StatusState

if TYPE_CHECKING:
    from ..ledger.desired_state import DesiredStatus
    from ..ledger.sync_journal import JournalEntry


class Verdict(str, Enum):
    WRITE = "write"  # HubSpot differs and holds nothing newer: send the desired status
    IN_SYNC = "in_sync"  # HubSpot already holds it
    NEWER_IN_HUBSPOT = "newer_in_hubspot"  # HubSpot changed after the decision: its newer choice stays
    NEEDS_OPT_IN = "needs_opt_in"  # SUBSCRIBED for a contact opted out of all: needs allow_resubscribe


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    # A write of the legal basis only: HubSpot already holds the status (its answer will say
    # NO_STATUS_CHANGE, and whether it stored the basis).
    basis_only: bool = False
    # The journal's entry of the sync's write HubSpot's status is, if it is one.
    written: JournalEntry | None = None
    # When HubSpot's status was set (epoch seconds; None for a status nobody set).
    held_since: float | None = None


def _at(moment: datetime | float) -> str:
    if isinstance(moment, float):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def decide(
    desired: DesiredStatus,
    current: PublicStatus | None,
    opted_out: PublicWideStatus | None,
    *,
    written: JournalEntry | None = None,
    basis_tried: JournalEntry | None = None,
    allow_resubscribe: bool = False,
) -> Decision:
    """The verdict on ``desired`` (a valid row) given what HubSpot was read to hold.

    ``current`` is HubSpot's status of the subscription, None only where HubSpot answered that it
    has no subscriber with that address (nothing was ever set). ``opted_out`` is the contact's
    unsubscribed-from-all status in the subscription's business unit, None if not read (the caller
    reads it for every row that would subscribe). ``written`` is the journal's entry when HubSpot's
    status is the sync's own earlier write (``KeyHistory.sync_write``); ``basis_tried``, the sync's
    last write of a legal basis to the status HubSpot still holds (``KeyHistory.basis_attempt``).
    """
    verdict = _verdict(desired, current, opted_out, written, basis_tried, allow_resubscribe)
    held_since = None
    if current is not None and current.status is not StatusState.NOT_SPECIFIED:
        held_since = current.timestamp.timestamp()
    return Decision(verdict.verdict, verdict.reason, verdict.basis_only, written, held_since)


def _verdict(
    desired: DesiredStatus,
    current: PublicStatus | None,
    opted_out: PublicWideStatus | None,
    written: JournalEntry | None,
    basis_tried: JournalEntry | None,
    allow_resubscribe: bool,
) -> Decision:
    assert desired.status is not None and desired.decided_at is not None
    wanted, decided = desired.status, desired.decided_at
    # A status nobody set is NOT_SPECIFIED, dated with the time of the read: that date says nothing.
    held = current.status.value if current is not None else StatusState.NOT_SPECIFIED.value
    set_at = current.timestamp if current is not None and held != StatusState.NOT_SPECIFIED.value else None
    # The time HubSpot's state speaks for: the decision the sync wrote, or the status's own date.
    speaks_for = datetime.fromtimestamp(written.decided, timezone.utc) if written is not None else set_at
    out_of_all = opted_out is not None and opted_out.status is StatusState.UNSUBSCRIBED
    if out_of_all and opted_out is not None and opted_out.timestamp > decided and wanted != "UNSUBSCRIBED":
        return Decision(
            Verdict.NEWER_IN_HUBSPOT,
            f"the contact unsubscribed from all email at {_at(opted_out.timestamp)}, after the decision "
            f"at {_at(decided)}: kept",
        )
    since = f" since {_at(set_at)}" if set_at is not None else ""
    if written is not None:
        since += f" ({written.describe()})"
    held_basis = current.legal_basis.value if current is not None and current.legal_basis else None
    if held == wanted:
        if desired.legal_basis is None or desired.legal_basis == held_basis:
            return Decision(Verdict.IN_SYNC, f"HubSpot already holds {held}{since}")
        if basis_tried is not None and basis_tried.basis_sent == desired.legal_basis:
            # Sent once already: HubSpot answered NO_STATUS_CHANGE and kept its own legal basis.
            return Decision(
                Verdict.IN_SYNC,
                f"HubSpot already holds {held}{since}; it kept its legal basis {held_basis} when the sync "
                f"sent {desired.legal_basis} at {_at(basis_tried.at)}, so it is not sent again",
            )
    if speaks_for is not None and speaks_for > decided:
        newer = (
            f"HubSpot's {held} is {written.describe()}, a decision later than this one at "
            f"{_at(decided)}: kept"
            if written is not None
            else f"HubSpot's {held} dates from {_at(speaks_for)}, after the decision at {_at(decided)}: kept"
        )
        return Decision(Verdict.NEWER_IN_HUBSPOT, newer)
    if wanted == "SUBSCRIBED" and out_of_all and not allow_resubscribe:
        assert opted_out is not None
        return Decision(
            Verdict.NEEDS_OPT_IN,
            f"the contact unsubscribed from all email at {_at(opted_out.timestamp)}; resubscribing needs "
            "allow_resubscribe=True and a legal basis",
        )
    if held == wanted:
        return Decision(
            Verdict.WRITE,
            f"HubSpot holds {held}{since} with legal basis {held_basis or 'none'}; the decision at "
            f"{_at(decided)} gives {desired.legal_basis}",
            basis_only=True,
        )
    return Decision(
        Verdict.WRITE, f"HubSpot holds {held}{since}; the decision at {_at(decided)} says {wanted}"
    )
