"""The portal's state: subscription definitions, contacts, their statuses and opt-outs of all email."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .config import EmulatorConfig
from .problems import ApiProblem, now_iso, validation

STATUS_STATES = ("SUBSCRIBED", "UNSUBSCRIBED", "NOT_SPECIFIED")
LEGAL_BASES = (
    "CONSENT_WITH_NOTICE",
    "LEGITIMATE_INTEREST_CLIENT",
    "LEGITIMATE_INTEREST_OTHER",
    "LEGITIMATE_INTEREST_PQL",
    "NON_GDPR",
    "PERFORMANCE_OF_CONTRACT",
    "PROCESS_AND_STORE",
)
CHANNELS = ("EMAIL",)
# ``source`` of a status: free text in HubSpot's specs, which list no values. The emulator names
# an API write and a person's own change (preference page, unsubscribe link) differently, as
# HubSpot's subscription history does, so that a client can be tested against both.
SOURCE = "Communication Preferences API"
PERSON_SOURCE = "Subscription preferences page"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z0-9-]+$")


def is_email(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 254 and bool(_EMAIL.match(value))


@dataclass
class Definition:
    id: int
    name: str
    description: str
    business_unit_id: int = 0
    purpose: str = "Marketing"
    is_active: bool = True
    is_default: bool = False
    created_at: str = "2024-01-15T09:00:00.000Z"
    updated_at: str = "2026-03-01T09:00:00.000Z"

    def to_api(self, translations: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "description": self.description,
            "businessUnitId": self.business_unit_id,
            "communicationMethod": "Email",
            "purpose": self.purpose,
            "isActive": self.is_active,
            "isDefault": self.is_default,
            "isInternal": False,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }
        if translations:
            stamp = 1_705_309_200_000
            data["subscriptionTranslations"] = [
                {
                    "subscriptionId": self.id,
                    "languageCode": "de",
                    "name": f"{self.name} (de)",
                    "description": f"{self.description} (de)",
                    "createdAt": stamp,
                    "updatedAt": stamp,
                }
            ]
        return data


def seed_definitions() -> list[Definition]:
    return [
        Definition(1001, "Marketing Information", "Marketing offers and updates.", is_default=True),
        Definition(1002, "One to One", "One to one emails.", purpose="Sales", is_default=True),
        Definition(1003, "Customer Service Communication", "Service updates.", purpose="Service"),
        Definition(1004, "Newsletter", "Monthly newsletter."),
        Definition(1005, "Legacy Promotions", "Retired promotions list.", is_active=False),
        Definition(2001, "Brand B Newsletter", "Newsletter of business unit 1.", business_unit_id=1),
    ]


SEED_CONTACTS = ("alice@example.com", "bob@example.org", "carol+news@example.net")


@dataclass
class StatusRecord:
    status: str
    legal_basis: str | None
    legal_basis_explanation: str | None
    timestamp: str
    source: str = SOURCE


class PortalState:
    """The portal's data and the rules of its statuses (a part of ``PortalBackend``)."""

    lock: Any
    config: EmulatorConfig

    def _reset_portal(self) -> None:
        self.definitions = seed_definitions()
        self.contacts: set[str] = set(SEED_CONTACTS)
        self.statuses: dict[tuple[str, int], StatusRecord] = {}
        self.wide: dict[tuple[str, int], str] = {}
        for email in SEED_CONTACTS:
            for sub_id in (1001, 1004):
                self.statuses[(email, sub_id)] = StatusRecord(
                    "SUBSCRIBED", "CONSENT_WITH_NOTICE", "Signed up on the website", now_iso()
                )
        # How often each (contact, subscription) really changed state: a write applied twice
        # would show here even where the final state looks the same.
        self.changes: Counter[tuple[str, int]] = Counter()
        # Every status write that reached the portal, applied or not: (contact, subscription, state).
        self.status_writes: list[tuple[str, int, str]] = []

    def add_contacts(self, emails: Iterable[str], unsubscribed_at: str | None = None) -> None:
        """Add contacts; with ``unsubscribed_at`` (ISO time) they unsubscribed from all back then."""
        with self.lock:
            added = [e.lower() for e in emails]
            self.contacts.update(added)
            if unsubscribed_at is None:
                return
            for email in added:
                for d in self.definitions:
                    self.statuses[(email, d.id)] = StatusRecord("UNSUBSCRIBED", None, None, unsubscribed_at)
                    self.wide[(email, d.business_unit_id)] = unsubscribed_at

    def set_history(
        self,
        email: str,
        sub_id: int,
        state: str,
        at: str,
        legal_basis: str | None = None,
        explanation: str | None = None,
        source: str = SOURCE,
    ) -> None:
        """Give a contact a status set at ``at`` (ISO time), as if it happened then (a sandbox's past)."""
        with self.lock:
            email = email.lower()
            self.require_definition(sub_id)
            self.contacts.add(email)
            self.statuses[(email, sub_id)] = StatusRecord(state, legal_basis, explanation, at, source)

    def person_choice(
        self, email: str, sub_id: int, state: str, at: str | None = None, source: str = PERSON_SOURCE
    ) -> str:
        """The person changes a status themselves (their preference page, an unsubscribe link):
        a real change of state, dated ``at`` (default now), under a source that is not the API's.
        Returns the status's timestamp."""
        with self.lock:
            email = email.lower()
            self.require_definition(sub_id)
            self.contacts.add(email)
            stamp = at or now_iso()
            self.statuses[(email, sub_id)] = StatusRecord(state, None, None, stamp, source)
            self.changes[(email, sub_id)] += 1
            return stamp

    def set_opted_out(self, email: str, at: str, business_unit_id: int = 0) -> None:
        """Have a contact opt out of all email of a business unit at ``at`` (ISO time)."""
        with self.lock:
            email = email.lower()
            self.contacts.add(email)
            self.wide[(email, business_unit_id)] = at

    def business_units(self) -> set[int]:
        return {d.business_unit_id for d in self.definitions}

    def check_business_unit(self, bu: int) -> int:
        if bu not in self.business_units():
            raise validation(f"Business unit {bu} does not exist in this portal.", "businessUnitId", bu)
        return bu

    def definition(self, sub_id: int) -> Definition | None:
        return next((d for d in self.definitions if d.id == sub_id), None)

    def require_definition(self, sub_id: int) -> Definition:
        found = self.definition(sub_id)
        if found is None:
            raise validation(
                f"Subscription {sub_id} does not exist in this portal.",
                "subscriptionId",
                sub_id,
                code="INVALID_SUBSCRIPTION_ID",
            )
        return found

    def list_definitions(self, bu: int | None, translations: bool) -> list[dict[str, Any]]:
        return [d.to_api(translations) for d in self.definitions if bu is None or d.business_unit_id == bu]

    def is_known(self, email: str) -> bool:
        return email in self.contacts

    def require_known(self, email: str) -> None:
        if not self.is_known(email):
            raise ApiProblem(
                404,
                "OBJECT_NOT_FOUND",
                "No contact or subscriber with that subscriberIdString.",
                context={"subscriberIdString": ["1 id"]},
            )

    def _public_status(self, email: str, d: Definition, reason: str | None = None) -> dict[str, Any]:
        rec = self.statuses.get((email, d.id))
        data: dict[str, Any] = {
            "channel": "EMAIL",
            "source": rec.source if rec else SOURCE,
            "status": rec.status if rec else "NOT_SPECIFIED",
            "subscriberIdString": email,
            "subscriptionId": d.id,
            "subscriptionName": d.name,
            "businessUnitId": d.business_unit_id,
            "timestamp": rec.timestamp if rec else now_iso(),
        }
        if rec and rec.legal_basis:
            data["legalBasis"] = rec.legal_basis
        if rec and rec.legal_basis_explanation:
            data["legalBasisExplanation"] = rec.legal_basis_explanation
        if reason:
            data["setStatusSuccessReason"] = reason
        return data

    def statuses_of(self, email: str, bu: int) -> list[dict[str, Any]]:
        return [self._public_status(email, d) for d in self.definitions if d.business_unit_id == bu]

    def wide_statuses_of(self, email: str, bu: int, all_units: bool) -> list[dict[str, Any]]:
        units = sorted(self.business_units()) if all_units else [bu]
        return [
            {
                "channel": "EMAIL",
                "status": "UNSUBSCRIBED" if (email, unit) in self.wide else "NOT_SPECIFIED",
                "subscriberIdString": email,
                "timestamp": self.wide.get((email, unit)) or now_iso(),
                "wideStatusType": "PORTAL_WIDE" if unit == 0 else "BUSINESS_UNIT_WIDE",
                "businessUnitId": unit,
            }
            for unit in units
        ]

    def set_status(
        self, email: str, state: str, sub_id: int, legal_basis: str | None, explanation: str | None
    ) -> dict[str, Any]:
        d = self.require_definition(sub_id)
        with self.lock:
            self.status_writes.append((email, sub_id, state))
            key = (email, sub_id)
            prior = self.statuses[key].status if key in self.statuses else "NOT_SPECIFIED"
            wide_key = (email, d.business_unit_id)
            if state == "SUBSCRIBED" and wide_key in self.wide:
                del self.wide[wide_key]
                reason = "RESUBSCRIBE_OCCURRED"
            elif state == prior:
                reason = "NO_STATUS_CHANGE"
            else:
                reason = "REQUESTED_CHANGE_OCCURRED"
            if reason != "NO_STATUS_CHANGE" or key not in self.statuses:
                self.statuses[key] = StatusRecord(state, legal_basis, explanation, now_iso())
            if reason != "NO_STATUS_CHANGE":
                self.changes[key] += 1
            self.contacts.add(email)
            return self._public_status(email, d, reason)

    def unsubscribe_all(self, email: str, bu: int, verbose: bool) -> list[dict[str, Any]]:
        if not self.config.keep_state:
            reason = "UNSUBSCRIBE_FROM_ALL_OCCURRED"
            return [
                {**self._public_status(email, d, reason), "status": "UNSUBSCRIBED"}
                for d in self.definitions
                if d.business_unit_id == bu
            ]
        with self.lock:
            results = []
            for d in self.definitions:
                if d.business_unit_id != bu:
                    continue
                key = (email, d.id)
                rec = self.statuses.get(key)
                if rec is not None and rec.status == "UNSUBSCRIBED":
                    if verbose:
                        results.append(self._public_status(email, d, "NO_STATUS_CHANGE"))
                    continue
                self.statuses[key] = StatusRecord(
                    "UNSUBSCRIBED",
                    rec.legal_basis if rec else None,
                    rec.legal_basis_explanation if rec else None,
                    now_iso(),
                )
                self.changes[key] += 1
                results.append(self._public_status(email, d, "UNSUBSCRIBE_FROM_ALL_OCCURRED"))
            self.wide.setdefault((email, bu), now_iso())
            self.contacts.add(email)
            return results

    # 2026-09's simple endpoints (/subscribe, /unsubscribe, /resubscribe, /status/email), in the
    # retired v3 API's style: subscriptionId is a string, status SUBSCRIBED / NOT_SUBSCRIBED.

    def simple_status(self, email: str, d: Definition) -> dict[str, Any]:
        rec = self.statuses.get((email, d.id))
        wide = (email, d.business_unit_id) in self.wide
        data: dict[str, Any] = {
            "id": str(d.id),
            "name": d.name,
            "description": d.description,
            "status": "SUBSCRIBED" if rec and rec.status == "SUBSCRIBED" and not wide else "NOT_SUBSCRIBED",
            "sourceOfStatus": ("PORTAL_WIDE_STATUS" if d.business_unit_id == 0 else "BRAND_WIDE_STATUS")
            if wide
            else "SUBSCRIPTION_STATUS",
            "preferenceGroupName": d.purpose,
        }
        if d.business_unit_id:
            data["brandId"] = d.business_unit_id
        if rec and rec.legal_basis:
            data["legalBasis"] = rec.legal_basis
        if rec and rec.legal_basis_explanation:
            data["legalBasisExplanation"] = rec.legal_basis_explanation
        return data

    def simple_update_status(
        self, action: str, email: str, sub_id: int, legal_basis: str | None, explanation: str | None
    ) -> dict[str, Any]:
        d = self.require_definition(sub_id)
        with self.lock:
            wide_key = (email, d.business_unit_id)
            if action == "subscribe" and wide_key in self.wide:
                raise validation(
                    "The contact opted out of all email; use /resubscribe with a legal basis.", "emailAddress"
                )
            if action == "resubscribe":
                if legal_basis is None:
                    raise validation("A legal basis is required to resubscribe a contact.", "legalBasis")
                self.wide.pop(wide_key, None)
            state = "UNSUBSCRIBED" if action == "unsubscribe" else "SUBSCRIBED"
            self.statuses[(email, sub_id)] = StatusRecord(state, legal_basis, explanation, now_iso())
            self.contacts.add(email)
            return self.simple_status(email, d)

    def simple_statuses(self, email: str) -> dict[str, Any]:
        with self.lock:
            return {
                "recipient": email,
                "subscriptionStatuses": [self.simple_status(email, d) for d in self.definitions],
            }
