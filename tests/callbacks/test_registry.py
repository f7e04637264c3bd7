"""The callback registry, against a real redis-server."""
from __future__ import annotations

import datetime as dt
import json
import re
import threading

import pytest
import redis as redis_lib
from conftest import FakeClock

from callbacks import CallbackRegistry, signature_header, verify

URL = "https://hooks.example/done"
PUBLIC_FIELDS = {"id", "url", "description", "disabled", "disabled_reason", "created_at"}


def test_create_returns_the_public_record_and_the_secret_once(registry: CallbackRegistry,
                                                              clock: FakeClock) -> None:
    record, secret = registry.create("acme", URL, "orders")
    assert set(record) == PUBLIC_FIELDS
    assert re.fullmatch(r"cb_[A-Za-z0-9_-]{22}", record["id"])
    assert record == {"id": record["id"], "url": URL, "description": "orders", "disabled": False,
                      "disabled_reason": None, "created_at": "2023-11-14T22:13:20.000Z"}
    assert secret.startswith("whsec_") and secret == registry.get_for_delivery(record["id"])["secrets"][0]
    assert registry.get("acme", record["id"]) == record
    assert dt.datetime.fromisoformat(record["created_at"]).timestamp() == clock.now


def test_secrets_never_leave_through_the_public_views(registry: CallbackRegistry) -> None:
    record, secret = registry.create("acme", URL)
    new = registry.rotate_secret("acme", record["id"])
    views = [registry.get("acme", record["id"]), registry.list("acme", 10, None),
             registry.update("acme", record["id"], description="x")]
    text = json.dumps(views)
    assert secret not in text and str(new) not in text and "whsec_" not in text


def test_ids_are_unique_and_malformed_ids_are_simply_unknown(registry: CallbackRegistry) -> None:
    ids = {registry.create("acme", f"{URL}/{n}")[0]["id"] for n in range(50)}
    assert len(ids) == 50
    for bad in ("", "cb_", "nope", "cb_" + "a" * 21, "cb_../../x" + "a" * 12, "*", "cb_" + "a" * 23):
        assert registry.get("acme", bad) is None
        assert registry.get_for_delivery(bad) is None
        assert registry.update("acme", bad, description="x") is None
        assert registry.rotate_secret("acme", bad) is None
        assert registry.delete("acme", bad) is False
    assert registry.get("acme", "cb_" + "A" * 22) is None  # well-formed but never created


def test_tenants_are_isolated(registry: CallbackRegistry) -> None:
    record, _ = registry.create("acme", URL)
    cb_id = record["id"]
    assert registry.get("umbrella", cb_id) is None
    assert registry.update("umbrella", cb_id, url="https://evil.example/", disabled=True) is None
    assert registry.rotate_secret("umbrella", cb_id) is None
    assert registry.delete("umbrella", cb_id) is False
    assert registry.find_by_url("umbrella", URL) is None
    assert registry.list("umbrella", 10, None) == ([], None)
    # nothing changed for the owner
    assert registry.get("acme", cb_id) == record
    assert len(registry.get_for_delivery(cb_id)["secrets"]) == 1
    assert registry.find_by_url("acme", URL) == cb_id


def test_get_for_delivery_has_what_a_delivery_needs(registry: CallbackRegistry) -> None:
    record, secret = registry.create("acme", URL, "orders")
    endpoint = registry.get_for_delivery(record["id"])
    assert endpoint == {**record, "tenant": "acme", "secrets": [secret], "failing_since": None,
                        "last_success_at": None}


def test_pages_are_newest_first_and_stable(registry: CallbackRegistry, clock: FakeClock) -> None:
    ids = []
    for n in range(7):
        if n % 2:
            clock.advance(1)  # some callbacks share a creation time
        ids.append(registry.create("acme", f"{URL}/{n}")[0]["id"])
    newest_first = ids[::-1]
    # tie-broken by id, newest time first
    expected = sorted(ids, key=lambda i: (registry.get("acme", i)["created_at"], i), reverse=True)
    seen, cursor, pages = [], None, 0
    while True:
        items, cursor = registry.list("acme", 3, cursor)
        pages += 1
        seen += [item["id"] for item in items]
        assert all(set(item) == PUBLIC_FIELDS for item in items)
        if pages == 1:
            clock.advance(1)
            registry.create("acme", f"{URL}/late")  # created mid-walk: must not shift the pages
        if cursor is None:
            break
    assert seen == expected and sorted(seen) == sorted(newest_first) and pages == 3


def test_a_limit_that_fits_exactly_has_no_next_page(registry: CallbackRegistry) -> None:
    for n in range(3):
        registry.create("acme", f"{URL}/{n}")
    items, cursor = registry.list("acme", 3, None)
    assert len(items) == 3 and cursor is None


@pytest.mark.parametrize("cursor", ["garbage!", "Zm9v", "MTIzOmNiX3g", "%%%", "=" * 8])
def test_foreign_cursors_are_value_errors(registry: CallbackRegistry, cursor: str) -> None:
    with pytest.raises(ValueError):
        registry.list("acme", 10, cursor)


def test_limit_must_be_positive(registry: CallbackRegistry) -> None:
    with pytest.raises(ValueError):
        registry.list("acme", 0, None)


def test_update_changes_fields_and_the_url_index(registry: CallbackRegistry) -> None:
    record, _ = registry.create("acme", URL, "orders")
    cb_id = record["id"]
    updated = registry.update("acme", cb_id, url="https://hooks.example/v2", description="v2")
    assert updated == {**record, "url": "https://hooks.example/v2", "description": "v2"}
    assert registry.find_by_url("acme", URL) is None
    assert registry.find_by_url("acme", "https://hooks.example/v2") == cb_id
    assert registry.update("acme", cb_id) == updated  # nothing asked, nothing changed
    assert registry.update("acme", cb_id, description="") == {**updated, "description": ""}


def test_disabling_by_hand_and_enabling_again(registry: CallbackRegistry, clock: FakeClock) -> None:
    record, _ = registry.create("acme", URL)
    cb_id = record["id"]
    assert not registry.record_failure(cb_id, disable_after=1000)
    shown = registry.update("acme", cb_id, disabled=True)
    assert shown["disabled"] and shown["disabled_reason"] == "manual"
    assert not registry.disable(cb_id, "gone")  # already disabled
    assert registry.get("acme", cb_id)["disabled_reason"] == "manual"
    shown = registry.update("acme", cb_id, disabled=False)
    assert shown["disabled"] is False and shown["disabled_reason"] is None
    assert registry.get_for_delivery(cb_id)["failing_since"] is None  # the streak starts afresh


def test_the_url_index_finds_the_newest_and_survives_deletes(registry: CallbackRegistry,
                                                             clock: FakeClock) -> None:
    first, _ = registry.create("acme", URL)
    clock.advance(1)
    second, _ = registry.create("acme", URL)
    assert registry.find_by_url("acme", URL) == second["id"]
    assert registry.delete("acme", second["id"])
    assert registry.find_by_url("acme", URL) == first["id"]
    registry.update("acme", first["id"], url="https://hooks.example/other")
    assert registry.find_by_url("acme", URL) is None
    assert registry.find_by_url("acme", "https://hooks.example/other") == first["id"]


def test_delete_leaves_nothing_behind(registry: CallbackRegistry, redis_client: redis_lib.Redis) -> None:
    ids = [registry.create("acme", f"{URL}/{n}")[0]["id"] for n in range(3)]
    for cb_id in ids:
        assert registry.delete("acme", cb_id)
        assert registry.delete("acme", cb_id) is False
        assert registry.get("acme", cb_id) is None and registry.get_for_delivery(cb_id) is None
    # Only the registry-wide change counter stays, moved on by each delete.
    assert redis_client.keys(f"{registry.prefix}*") == [registry.generation_key.encode()]
    assert redis_client.get(registry.generation_key) == b"3"
    registry.record_success(ids[0])  # a late delivery result must not bring the record back
    registry.record_failure(ids[0], 0)
    assert registry.disable(ids[0], "gone") is False
    assert redis_client.keys(f"{registry.prefix}*") == [registry.generation_key.encode()]
    assert redis_client.get(registry.generation_key) == b"3"


def test_rotation_keeps_the_old_secret_for_the_grace_period(registry: CallbackRegistry,
                                                            clock: FakeClock) -> None:
    record, old = registry.create("acme", URL)
    cb_id = record["id"]
    new = registry.rotate_secret("acme", cb_id)
    assert new and new != old and new.startswith("whsec_")
    live = registry.get_for_delivery(cb_id)["secrets"]
    assert live == [new, old]
    # the webhook is signed with both, and verifies with either
    now = int(clock.now)
    header = signature_header(live, "msg_1", now, b'{"a": 1}')
    hdrs = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": header}
    for secret in (old, new):
        assert verify(b'{"a": 1}', hdrs, secret, now=now) == {"a": 1}
    clock.advance(50)
    newer = registry.rotate_secret("acme", cb_id)
    assert registry.get_for_delivery(cb_id)["secrets"] == [newer, new, old]
    clock.advance(51)  # the first grace period (100 s) is over
    assert registry.get_for_delivery(cb_id)["secrets"] == [newer, new]
    clock.advance(100)
    assert registry.get_for_delivery(cb_id)["secrets"] == [newer]


def test_concurrent_rotations_lose_no_secret(registry: CallbackRegistry) -> None:
    record, first = registry.create("acme", URL)
    made: list[str | None] = []
    threads = [threading.Thread(target=lambda: made.append(registry.rotate_secret("acme", record["id"])))
               for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    live = registry.get_for_delivery(record["id"])["secrets"]
    assert sorted(live) == sorted([first, *made]) and None not in made


def test_failing_long_enough_disables_once(registry: CallbackRegistry, clock: FakeClock) -> None:
    record, _ = registry.create("acme", URL)
    cb_id = record["id"]
    assert not registry.record_failure(cb_id, disable_after=50)
    assert registry.get_for_delivery(cb_id)["failing_since"] == clock.now
    clock.advance(49)
    assert not registry.record_failure(cb_id, disable_after=50)
    clock.advance(1)
    assert registry.record_failure(cb_id, disable_after=50)
    shown = registry.get("acme", cb_id)
    assert shown["disabled"] and shown["disabled_reason"] == "failing"
    clock.advance(100)
    assert not registry.record_failure(cb_id, disable_after=50)  # already disabled: counted once


def test_a_success_ends_the_failing_streak(registry: CallbackRegistry, clock: FakeClock) -> None:
    record, _ = registry.create("acme", URL)
    cb_id = record["id"]
    registry.record_failure(cb_id, disable_after=50)
    clock.advance(40)
    registry.record_success(cb_id)
    endpoint = registry.get_for_delivery(cb_id)
    assert endpoint["failing_since"] is None and endpoint["last_success_at"] == clock.now
    clock.advance(40)
    assert not registry.record_failure(cb_id, disable_after=50)  # 80 s since the first failure, 0 in this streak
    assert not registry.get("acme", cb_id)["disabled"]


def test_disable_is_atomic(registry: CallbackRegistry) -> None:
    record, _ = registry.create("acme", URL)
    results: list[bool] = []
    barrier = threading.Barrier(16)

    def race() -> None:
        barrier.wait(timeout=10)
        results.append(registry.disable(record["id"], "gone"))

    threads = [threading.Thread(target=race) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results.count(True) == 1 and len(results) == 16
    assert registry.get("acme", record["id"])["disabled_reason"] == "gone"


def test_reads_and_outcomes_are_one_round_trip_each(registry: CallbackRegistry,
                                                    redis_client: redis_lib.Redis) -> None:
    record, _ = registry.create("acme", URL)
    registry.record_success(record["id"])  # Redis now knows the script
    before = _calls(redis_client)
    registry.get("acme", record["id"])
    registry.get_for_delivery(record["id"])
    registry.find_by_url("acme", URL)
    registry.record_success(record["id"])
    after = _calls(redis_client)
    # The counts include the commands the script runs inside Redis (EXISTS,
    # HSET, and INCR of the change counter).
    assert {name: after[name] - before.get(name, 0) for name in after
            if after[name] != before.get(name, 0)} == {
        "hgetall": 2, "hget": 1, "evalsha": 1, "exists": 1, "hset": 1, "incr": 1, "info": 1}


def _calls(client: redis_lib.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def test_the_registry_works_with_a_fresh_client(redis_server, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    # Scripts are loaded on first use, so a registry made before Redis has
    # seen them (or after a SCRIPT FLUSH) still works.
    client = redis_lib.Redis.from_url(redis_server.url)
    try:
        client.script_flush()
        reg = CallbackRegistry(client, prefix="fresh:", clock=clock)
        record, _ = reg.create("acme", URL)
        assert reg.disable(record["id"], "manual")
        assert reg.delete("acme", record["id"])
    finally:
        client.close()


def test_the_default_clock_and_grace(redis_client: redis_lib.Redis) -> None:
    reg = CallbackRegistry(redis_client, prefix="defaults:")
    record, _ = reg.create("acme", URL)
    try:
        assert reg.grace == 86400.0
        created = dt.datetime.fromisoformat(record["created_at"])
        assert abs(created - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
        new = reg.rotate_secret("acme", record["id"])
        assert reg.get_for_delivery(record["id"])["secrets"][0] == new
    finally:
        reg.delete("acme", record["id"])


def test_every_change_moves_the_change_counter_and_reads_do_not(
    registry: CallbackRegistry, redis_client: redis_lib.Redis, clock: FakeClock
) -> None:
    def counter() -> int:
        return int(redis_client.get(registry.generation_key) or 0)

    record, _ = registry.create("acme", URL)
    cb_id = record["id"]
    changes = [
        lambda: registry.update("acme", cb_id, url=f"{URL}/new"),
        lambda: registry.update("acme", cb_id, description="billing"),
        lambda: registry.rotate_secret("acme", cb_id),
        lambda: registry.record_failure(cb_id, 3600),  # a failing streak starts
        lambda: registry.record_success(cb_id),
        lambda: registry.disable(cb_id, "gone"),
        lambda: registry.update("acme", cb_id, disabled=False),
        lambda: registry.delete("acme", cb_id),
    ]
    for change in changes:
        before = counter()
        change()
        assert counter() == before + 1
    before = counter()
    registry.get("acme", cb_id)
    registry.get_for_delivery(cb_id)
    registry.list("acme")
    assert registry.update("other", cb_id, description="x") is None
    assert counter() == before
