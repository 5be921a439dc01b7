"""What the consent sync does with one desired row, given what HubSpot holds (issue 13's core rule).

HubSpot's answer to a batch read gives each subscription's status with the time it was set, and
the contact's unsubscribed-from-all status with its time. A desired row is written only when
HubSpot differs from it and nothing in HubSpot is newer than the person's decision: a choice the
person made in HubSpot after the warehouse's snapshot (an unsubscribe link clicked yesterday) is
kept, never overwritten. Resubscribing someone who opted out of all email needs the caller's
explicit opt-in. Nothing here sends anything; ``decide`` is a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from ..ledger.desired_state import DesiredStatus
from .models import PublicStatus, PublicWideStatus, StatusState


class Verdict(str, Enum):
    WRITE = "write"  # HubSpot differs and holds nothing newer: send the desired status
    IN_SYNC = "in_sync"  # HubSpot already holds it
    NEWER_IN_HUBSPOT = "newer_in_hubspot"  # HubSpot changed after the decision: its newer choice stays
    NEEDS_OPT_IN = "needs_opt_in"  # SUBSCRIBED for a contact opted out of all: needs allow_resubscribe


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str


def _at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def decide(
    desired: DesiredStatus,
    current: PublicStatus | None,
    opted_out: PublicWideStatus | None,
    *,
    allow_resubscribe: bool = False,
) -> Decision:
    """The verdict on ``desired`` (a valid row) given HubSpot's status of that subscription
    (``current``, None if HubSpot listed none) and the contact's unsubscribed-from-all status in
    the subscription's business unit (``opted_out``, None if not read)."""
    assert desired.status is not None and desired.decided_at is not None
    wanted, decided = desired.status, desired.decided_at
    # A status nobody set is NOT_SPECIFIED, dated with the time of the read: that date says nothing.
    held = current.status.value if current is not None else StatusState.NOT_SPECIFIED.value
    set_at = current.timestamp if current is not None and held != StatusState.NOT_SPECIFIED.value else None
    out_of_all = opted_out is not None and opted_out.status is StatusState.UNSUBSCRIBED
    if out_of_all and opted_out is not None and opted_out.timestamp > decided and wanted != "UNSUBSCRIBED":
        return Decision(
            Verdict.NEWER_IN_HUBSPOT,
            f"the contact unsubscribed from all email at {_at(opted_out.timestamp)}, after the decision "
            f"at {_at(decided)}: kept",
        )
    same_basis = desired.legal_basis is None or (
        current is not None
        and current.legal_basis is not None
        and current.legal_basis.value == desired.legal_basis
    )
    if held == wanted and same_basis:
        since = f" since {_at(set_at)}" if set_at is not None else ""
        return Decision(Verdict.IN_SYNC, f"HubSpot already holds {held}{since}")
    if set_at is not None and set_at > decided:
        return Decision(
            Verdict.NEWER_IN_HUBSPOT,
            f"HubSpot's {held} dates from {_at(set_at)}, after the decision at {_at(decided)}: kept",
        )
    if wanted == "SUBSCRIBED" and out_of_all and not allow_resubscribe:
        assert opted_out is not None
        return Decision(
            Verdict.NEEDS_OPT_IN,
            f"the contact unsubscribed from all email at {_at(opted_out.timestamp)}; resubscribing needs "
            "allow_resubscribe=True and a legal basis",
        )
    since = f" since {_at(set_at)}" if set_at is not None else ""
    return Decision(
        Verdict.WRITE, f"HubSpot holds {held}{since}; the decision at {_at(decided)} says {wanted}"
    )
