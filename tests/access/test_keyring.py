"""KeyRing: authentication from memory, immediate expiry and revocation, keys made by
other processes, and garbage keys that must not reach the store more than once."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.exc import OperationalError

from keel.access import AccessAdmin, KeyRing, _keyring, api_keys
from keel.core import AuthenticationError
from keel.store import create_store_engine
from tests.access.clock import FakeClock
from tests.access.conftest import CLI, Org


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ring(engine: Engine, org: Org, clock: FakeClock) -> KeyRing:
    keys = KeyRing(engine, refresh_interval=0.05, clock=clock)
    keys.load()
    return keys


def test_a_key_resolves_to_its_principal(ring: KeyRing, org: Org, access: AccessAdmin) -> None:
    who = ring.authenticate(org.member_a.secret)
    assert (who.key_id, who.role, who.team_id, who.name) == (
        org.member_a.key.id,
        "member",
        org.team_a.id,
        "m-a",
    )
    assert who.allowed_models is None
    limited = access.create_key(CLI, name="lim", role="service", team_id=org.team_a.id, models=["x", "y"])
    ring.reload()
    assert ring.authenticate(limited.secret).allowed_models == frozenset({"x", "y"})
    assert ring.authenticate(org.admin.secret).is_admin


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "Malformed"),
        ("Bearer sk-keel-abc", "Malformed"),
        ("sk-keel-short", "Malformed"),
        ("sk-" + "a" * 48, "Malformed"),
        ("sk-keel-" + "!" * 43, "Malformed"),
        ("sk-keel-" + "A" * 43, "no such key"),
    ],
)
async def test_malformed_and_unknown_keys_fail_with_a_clear_message(
    ring: KeyRing, token: str, message: str
) -> None:
    with pytest.raises(AuthenticationError, match=message) as caught:
        ring.authenticate(token)
    assert caught.value.status == 401
    with pytest.raises(AuthenticationError, match=message):
        await ring.authenticate_async(token)


def test_expiry_takes_effect_on_the_very_call_it_passes(
    ring: KeyRing, access: AccessAdmin, org: Org, clock: FakeClock
) -> None:
    expires = datetime.now(UTC) + timedelta(hours=1)
    key = access.create_key(CLI, name="short", role="service", team_id=org.team_a.id, expires_at=expires)
    ring.reload()
    clock.offset = expires - datetime.now(UTC) - timedelta(seconds=5)
    assert ring.authenticate(key.secret).key_id == key.key.id
    clock.advance(timedelta(seconds=5))  # no reload: the ring compares with the clock
    with pytest.raises(AuthenticationError, match="expired") as caught:
        ring.authenticate(key.secret)
    assert key.secret not in caught.value.message and key.key.prefix in caught.value.message


def test_a_revoked_key_fails_as_soon_as_the_ring_reloads(
    ring: KeyRing, access: AccessAdmin, org: Org
) -> None:
    assert ring.authenticate(org.service_a.secret)
    access.revoke_key(CLI, org.service_a.key.id)
    ring.reload()
    with pytest.raises(AuthenticationError, match="revoked"):
        ring.authenticate(org.service_a.secret)


async def test_the_poller_picks_up_changes_made_by_another_process(
    database_url: str, engine: Engine, org: Org, ring: KeyRing
) -> None:
    other = create_store_engine(database_url)  # another process's engine
    try:
        elsewhere = AccessAdmin(other)
        await ring.start()
        created = await asyncio.to_thread(
            elsewhere.create_key, CLI, name="new", role="service", team_id=org.team_b.id
        )
        await asyncio.to_thread(elsewhere.revoke_key, CLI, org.member_b.key.id)
        for _ in range(100):
            try:
                ring.authenticate(created.secret)
            except AuthenticationError:
                await asyncio.sleep(0.02)
                continue
            try:
                ring.authenticate(org.member_b.secret)
            except AuthenticationError:
                break
            await asyncio.sleep(0.02)
        assert ring.authenticate(created.secret).key_id == created.key.id
        with pytest.raises(AuthenticationError, match="revoked"):
            ring.authenticate(org.member_b.secret)
    finally:
        await ring.stop()
        other.dispose()
    assert ring._poller is None


def _write_key_directly(engine: Engine, secret: str, team_id: str) -> None:
    """What another process's ``create_key`` leaves in the store, without a change bump."""
    with engine.begin() as connection:
        connection.execute(
            insert(api_keys).values(
                id="key_elsewhere",
                team_id=team_id,
                name="elsewhere",
                role="service",
                key_hash=hashlib.sha256(secret.encode()).hexdigest(),
                key_prefix=secret[:12],
                created_at=datetime.now(UTC),
                created_by="cli:other",
            )
        )


async def test_a_key_made_elsewhere_since_the_last_poll_is_found_in_the_store(
    ring: KeyRing, engine: Engine, org: Org
) -> None:
    secret = "sk-keel-" + "E" * 43
    _write_key_directly(engine, secret, org.team_a.id)
    with pytest.raises(AuthenticationError):
        ring.authenticate(secret)  # memory only
    who = await ring.authenticate_async(secret)
    assert (who.key_id, who.team_id) == ("key_elsewhere", org.team_a.id)
    assert ring.authenticate(secret).key_id == "key_elsewhere"  # now in memory


async def test_unknown_keys_reach_the_store_once_per_refresh_interval(
    ring: KeyRing, engine: Engine, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    fetch = ring._fetch_blocking

    def counting_fetch(digest: str) -> object:
        lookups.append(digest)
        return fetch(digest)

    monkeypatch.setattr(ring, "_fetch_blocking", counting_fetch)
    garbage = "sk-keel-" + "G" * 43
    results = await asyncio.gather(
        *(ring.authenticate_async(garbage) for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert len(lookups) == 1
    with pytest.raises(AuthenticationError):
        await ring.authenticate_async(garbage)
    assert len(lookups) == 1, "remembered as a miss"
    # A miss is only remembered for one refresh interval: a key created with that value
    # afterwards is found.
    _write_key_directly(engine, garbage, org.team_a.id)
    await asyncio.sleep(0.06)
    assert (await ring.authenticate_async(garbage)).key_id == "key_elsewhere"
    assert len(lookups) == 2


async def test_a_store_outage_keeps_the_keys_in_memory(
    ring: KeyRing, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    def store_down(*args: object) -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(_keyring, "read_changes", store_down)
    monkeypatch.setattr(ring, "_fetch_blocking", store_down)
    await ring.start()
    try:
        await asyncio.sleep(0.15)  # a few failing polls
        assert ring.authenticate(org.member_a.secret).key_id == org.member_a.key.id
        with pytest.raises(AuthenticationError, match="no such key"):
            await ring.authenticate_async("sk-keel-" + "Z" * 43)
    finally:
        await ring.stop()
