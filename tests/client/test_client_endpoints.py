"""Every endpoint of every API version, through the real client, over HTTP to the emulator."""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_hubspot_prefs.client import (
    HubSpotNotFoundError,
    HubSpotUnsupportedEndpointError,
    HubSpotValidationError,
    LegalBasis,
    OperationStatus,
    SetStatusSuccessReason,
    StatusState,
    WideStatusType,
    status_request,
)
from airflow_provider_hubspot_prefs.client.models import SourceOfStatus, SubscriptionStatusValue

from ..conftest import api_requests

ALL_VERSIONS = ["v4", "2026-03", "2026-09"]
KNOWN = "alice@example.com"  # seeded: SUBSCRIBED to 1001 and 1004 with CONSENT_WITH_NOTICE


def by_subscription(statuses):
    return {s.subscription_id: s for s in statuses}


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_definitions(make_client, emulator, version):
    client = make_client(version)
    portal = client.get_definitions()
    assert portal.status is OperationStatus.COMPLETE
    ids = {d.id for d in portal.results}
    assert {"1001", "1004", "2001"} <= ids
    assert all(d.subscription_translations is None for d in portal.results)

    unit = client.get_definitions(business_unit_id=1, include_translations=True)
    assert [d.id for d in unit.results] == ["2001"]
    assert unit.results[0].subscription_translations[0].language_code == "de"
    assert api_requests(emulator)[-1]["path"] == f"/communication-preferences/{version}/definitions"


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_generate_links(make_client, version):
    links = make_client(version).generate_links(KNOWN, subscription_id=1004, language="fr")
    assert links.subscriber_id_string == KNOWN
    assert links.manage_preferences_url.startswith("https://")
    assert "lang=fr" in links.unsubscribe_all_url
    assert links.unsubscribe_single_url and "s=1004" in links.unsubscribe_single_url


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_get_and_set_status_with_legal_basis(make_client, version):
    client = make_client(version)
    before = by_subscription(client.get_status(KNOWN).results)
    assert before[1001].status is StatusState.SUBSCRIBED
    assert before[1002].status is StatusState.NOT_SPECIFIED

    changed = client.set_status(
        KNOWN,
        status_state="SUBSCRIBED",
        subscription_id=1002,
        legal_basis=LegalBasis.LEGITIMATE_INTEREST_CLIENT,
        legal_basis_explanation="Existing customer",
    )
    (result,) = changed.results
    assert result.set_status_success_reason is SetStatusSuccessReason.REQUESTED_CHANGE_OCCURRED
    assert result.legal_basis is LegalBasis.LEGITIMATE_INTEREST_CLIENT

    again = client.set_status(KNOWN, status_state=StatusState.SUBSCRIBED, subscription_id=1002)
    assert again.results[0].set_status_success_reason is SetStatusSuccessReason.NO_STATUS_CHANGE

    after = by_subscription(client.get_status(KNOWN).results)
    assert after[1002].status is StatusState.SUBSCRIBED
    assert after[1002].legal_basis_explanation == "Existing customer"


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_unsubscribe_all_then_resubscribe(make_client, version):
    client = make_client(version)
    wide = client.get_unsubscribe_all_status(KNOWN).results
    assert [(w.status, w.wide_status_type) for w in wide] == [
        (StatusState.NOT_SPECIFIED, WideStatusType.PORTAL_WIDE)
    ]

    done = client.unsubscribe_all(KNOWN, verbose=True)
    assert {s.set_status_success_reason for s in done.results} == {
        SetStatusSuccessReason.UNSUBSCRIBE_FROM_ALL_OCCURRED
    }
    assert {s.status for s in client.get_status(KNOWN).results} == {StatusState.UNSUBSCRIBED}
    assert client.get_unsubscribe_all_status(KNOWN).results[0].status is StatusState.UNSUBSCRIBED

    repeat = client.unsubscribe_all(KNOWN, verbose=True)
    assert {s.set_status_success_reason for s in repeat.results} == {SetStatusSuccessReason.NO_STATUS_CHANGE}
    assert client.unsubscribe_all(KNOWN).results == []  # not verbose: only changes are listed

    back = client.set_status(
        KNOWN, status_state="SUBSCRIBED", subscription_id=1001, legal_basis="CONSENT_WITH_NOTICE"
    )
    assert back.results[0].set_status_success_reason is SetStatusSuccessReason.RESUBSCRIBE_OCCURRED
    assert client.get_unsubscribe_all_status(KNOWN).results[0].status is StatusState.NOT_SPECIFIED


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_business_unit_wide_unsubscribe(make_client, version):
    client = make_client(version)
    client.unsubscribe_all(KNOWN, business_unit_id=1)
    units = {w.business_unit_id: w for w in client.get_unsubscribe_all_status(KNOWN, verbose=True).results}
    assert units[1].status is StatusState.UNSUBSCRIBED
    assert units[1].wide_status_type is WideStatusType.BUSINESS_UNIT_WIDE
    assert units[0].status is StatusState.NOT_SPECIFIED


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_batch_endpoints(make_client, emulator, version):
    client = make_client(version)
    people = ["bob@example.org", "new.person@example.com", "carol+news@example.net"]

    write = client.batch_write_statuses(
        [
            status_request(p, status_state="SUBSCRIBED", subscription_id=1003, legal_basis="NON_GDPR")
            for p in people
        ]
    )
    assert sorted(r.subscriber_id_string for r in write.results) == sorted(people)
    assert not write.has_errors

    unsub = client.batch_unsubscribe_all(people[:2], verbose=True)
    assert [r.subscriber_id_string for r in unsub.results] == people[:2]
    assert all(s.status is StatusState.UNSUBSCRIBED for r in unsub.results for s in r.statuses)

    read = client.batch_read_statuses([*people, "stranger@example.com"])
    assert {r.subscriber_id_string for r in read.results} == set(people)
    assert read.errors[0].category == "OBJECT_NOT_FOUND"
    assert read.errors[0].subscriber_ids == ["stranger@example.com"]
    wide = client.batch_read_unsubscribe_all([*people, "stranger@example.com"])
    states = {r.subscriber_id_string: r.wide_statuses[0].status for r in wide.results}
    assert states == {
        people[0]: StatusState.UNSUBSCRIBED,
        people[1]: StatusState.UNSUBSCRIBED,
        people[2]: StatusState.NOT_SPECIFIED,
    }
    assert wide.num_errors == 1

    # v4 and 2026-03 answer 207 when some inputs failed; 2026-09 dropped the 207 from its spec.
    reads = [r for r in api_requests(emulator) if r["path"].endswith("/read")]
    expected = 200 if version == "2026-09" else 207
    assert [r["status"] for r in reads] == [expected, expected]


@pytest.mark.parametrize("version", ["v4", "2026-03"])
def test_2026_09_endpoints_are_refused_before_sending_in_older_versions(make_client, emulator, version):
    client = make_client(version)
    for call in (
        lambda: client.subscribe(KNOWN, subscription_id=1001),
        lambda: client.unsubscribe(KNOWN, subscription_id=1001),
        lambda: client.resubscribe(KNOWN, subscription_id=1001, legal_basis="NON_GDPR"),
        lambda: client.get_email_status(KNOWN),
    ):
        with pytest.raises(HubSpotUnsupportedEndpointError, match="2026-09"):
            call()
    assert api_requests(emulator) == []


def test_2026_09_v3_style_endpoints(make_client):
    client = make_client("2026-09")
    status = client.unsubscribe(KNOWN, subscription_id=1001)
    assert (status.id, status.status) == ("1001", SubscriptionStatusValue.NOT_SUBSCRIBED)

    status = client.subscribe(KNOWN, subscription_id="1001", legal_basis="CONSENT_WITH_NOTICE")
    assert status.status is SubscriptionStatusValue.SUBSCRIBED

    client.unsubscribe_all(KNOWN)
    overview = client.get_email_status(KNOWN)
    assert overview.recipient == KNOWN
    assert {s.source_of_status for s in overview.subscription_statuses if s.brand_id is None} == {
        SourceOfStatus.PORTAL_WIDE_STATUS
    }
    with pytest.raises(HubSpotValidationError, match="resubscribe"):
        client.subscribe(KNOWN, subscription_id=1001)

    status = client.resubscribe(
        KNOWN,
        subscription_id=1001,
        legal_basis="CONSENT_WITH_NOTICE",
        legal_basis_explanation="Asked to be back",
    )
    assert status.status is SubscriptionStatusValue.SUBSCRIBED
    assert status.source_of_status is SourceOfStatus.SUBSCRIPTION_STATUS


@pytest.mark.parametrize("address", ["o'brien+tag/x%y@example.com", "a@b.co", "UPPER@Example.COM"])
def test_subscriber_ids_are_url_encoded_in_paths(make_client, emulator, address):
    client = make_client()
    client.unsubscribe_all(address)
    (wide,) = client.get_unsubscribe_all_status(address).results
    assert wide.subscriber_id_string == address.lower()
    assert wide.status is StatusState.UNSUBSCRIBED
    sent = api_requests(emulator)[-1]["path"]
    assert sent.endswith(f"/statuses/{address}/unsubscribe-all")  # decoded by the server: nothing lost


def test_unknown_contact_single_read_is_not_found(make_client):
    with pytest.raises(HubSpotNotFoundError) as err:
        make_client().get_status("nobody@example.com")
    assert err.value.category == "OBJECT_NOT_FOUND"
    assert err.value.correlation_id


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_async_client_covers_the_same_endpoints(make_async_client, version):
    async def scenario():
        async with make_async_client(version) as client:
            assert (await client.get_definitions()).results
            assert (await client.generate_links(KNOWN)).subscriber_id_string == KNOWN
            await client.set_status(KNOWN, status_state="UNSUBSCRIBED", subscription_id=1004)
            statuses = by_subscription((await client.get_status(KNOWN)).results)
            assert statuses[1004].status is StatusState.UNSUBSCRIBED
            unsub = await client.batch_unsubscribe_all(["x1@example.com", "x2@example.com"])
            assert len(unsub.results) == 2
            await client.batch_write_statuses(
                [status_request("x3@example.com", status_state="SUBSCRIBED", subscription_id=1001)]
            )
            read = await client.batch_read_statuses(["x1@example.com", "x3@example.com"])
            assert len(read.results) == 2
            wide = await client.batch_read_unsubscribe_all(["x1@example.com"])
            assert wide.results[0].wide_statuses[0].status is StatusState.UNSUBSCRIBED
            await client.unsubscribe_all(KNOWN)
            wide1 = await client.get_unsubscribe_all_status(KNOWN)
            assert wide1.results[0].status is StatusState.UNSUBSCRIBED
            if version == "2026-09":
                await client.resubscribe(KNOWN, subscription_id=1001, legal_basis="NON_GDPR")
                await client.unsubscribe(KNOWN, subscription_id=1004)
                await client.subscribe(KNOWN, subscription_id=1003)
                overview = await client.get_email_status(KNOWN)
                assert len(overview.subscription_statuses) == 6
            # Concurrency over one pooled client.
            results = await asyncio.gather(*(client.get_status(KNOWN) for _ in range(20)))
            assert len(results) == 20

    asyncio.run(scenario())
