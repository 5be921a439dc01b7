"""The ledger's vocabulary: its columns, the outcomes an input can end in, and one row of it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# The ledger's columns, in file order. ``correlation_id`` is the request's (HubSpot support asks for
# it); ``error_id`` is the id HubSpot gave one error inside a batch answer; ``first_sent_at`` is when
# the input was first sent (UTC), which is how a change is told from "was already so";
# ``requested_at`` is when the person asked for the opt-out (from the input; the text as given when
# it could not be read as a time), ``confirmed_at`` when HubSpot was seen to hold the state asked for
# (its answer to the write, or a later read): together they say whether an opt-out was honoured in time.
LEDGER_COLUMNS = (
    "line",
    "input",
    "subscriber_id",
    "outcome",
    "reason",
    "category",
    "correlation_id",
    "error_id",
    "operation_status",
    "first_sent_at",
    "requested_at",
    "confirmed_at",
)
# The header of ledgers written before ``requested_at`` and ``confirmed_at`` (still read: they are
# last year's record).
EARLIER_LEDGER_COLUMNS = LEDGER_COLUMNS[:10]


class Outcome(str, Enum):
    """Where each input ended. Every input line gets exactly one."""

    UNSUBSCRIBED = "unsubscribed"  # this run changed it
    ALREADY_UNSUBSCRIBED = "already_unsubscribed"  # it was so before this run
    STATUS_SET = "status_set"
    ALREADY_IN_STATE = "already_in_state"
    SUBMITTED = "submitted"  # accepted by HubSpot, operation still PENDING/PROCESSING
    INVALID_INPUT = "invalid_input"  # not an address (empty, malformed, undecodable); never sent
    DUPLICATE = "duplicate"  # same address as an earlier line, sent once
    FAILED = "failed"  # HubSpot (or the network) refused it; see reason
    KEPT_NEWER_IN_HUBSPOT = "kept_newer_in_hubspot"  # consent sync: HubSpot changed after the decision
    NEEDS_OPT_IN = "needs_opt_in"  # consent sync: resubscribing an opted-out contact was not allowed
    NOT_ATTEMPTED = "not_attempted"  # dry run, or the task stopped before sending it
    PENDING = "pending"  # only in a checkpoint or a killed task's ledger: no answer recorded yet


# Outcomes that need nothing more from this task.
DONE_OUTCOMES = frozenset(
    {
        Outcome.UNSUBSCRIBED,
        Outcome.ALREADY_UNSUBSCRIBED,
        Outcome.STATUS_SET,
        Outcome.ALREADY_IN_STATE,
        Outcome.INVALID_INPUT,
        Outcome.DUPLICATE,
        Outcome.KEPT_NEWER_IN_HUBSPOT,
        Outcome.NEEDS_OPT_IN,
    }
)
# Outcomes that mean HubSpot was seen holding the state asked for (a row gets ``confirmed_at``).
CONFIRMED_OUTCOMES = frozenset(
    {Outcome.UNSUBSCRIBED, Outcome.ALREADY_UNSUBSCRIBED, Outcome.STATUS_SET, Outcome.ALREADY_IN_STATE}
)
# Outcomes a retry sends again (the writes set states, so a resend cannot apply anything twice).
RETRIED_OUTCOMES = frozenset({Outcome.FAILED, Outcome.NOT_ATTEMPTED, Outcome.PENDING})


@dataclass(frozen=True)
class Row:
    """An outcome to record for one input line."""

    line: int
    outcome: Outcome
    reason: str | None = None
    category: str | None = None
    correlation_id: str | None = None
    operation_status: str | None = None
    error_id: str | None = None
