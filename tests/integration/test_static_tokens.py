"""The static token file imported into a real Redis: its tokens verify with the role, tenant
and capabilities it names; importing again changes nothing (a revoke sticks); a new token under
a name replaces the old one; a token the file no longer names stops working."""

from __future__ import annotations

from pathlib import Path

from hivewire.core.api_tokens import StaticToken, dump_static_tokens, new_token
from hivewire_services.common.auth.static_tokens import import_static_tokens
from hivewire_services.common.auth.tokens import TokenStore
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis


def _write(path: Path, entries: list[StaticToken]) -> str:
    path.write_text(dump_static_tokens(entries))
    return str(path)


async def test_imported_tokens_verify_and_import_is_idempotent(
    redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    store = TokenStore(redis, keys)
    admin, agent = new_token()[1], new_token()[1]
    path = _write(
        tmp_path / "tokens.json",
        [
            StaticToken.of("admin", "admin", admin),
            StaticToken.of("agent-demo-1", "agent", agent, ("echo", "sleep")),
        ],
    )
    assert await import_static_tokens(redis, keys, path) == 2
    record = await store.verify(agent)
    assert record is not None
    assert (record.name, record.role, record.tenant) == ("agent-demo-1", "agent", "agent-demo-1")
    assert record.capabilities == ("echo", "sleep")
    admin_record = await store.verify(admin)
    assert admin_record is not None and admin_record.role == "admin"
    assert await store.verify(admin[:-1] + ("0" if admin[-1] != "0" else "1")) is None
    # Again: nothing changes, and a revoke made through the API sticks.
    await store.revoke("admin")
    assert await import_static_tokens(redis, keys, path) == 0
    assert await store.verify(admin) is None
    assert await store.verify(agent) is not None
    assert sorted(r.name for r in await store.list()) == ["admin", "agent-demo-1"]


async def test_a_new_token_under_a_name_replaces_the_old_one(
    redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    store = TokenStore(redis, keys)
    old, new = new_token()[1], new_token()[1]
    path = tmp_path / "tokens.json"
    await import_static_tokens(redis, keys, _write(path, [StaticToken.of("ci", "client", old)]))
    assert await store.verify(old) is not None
    await import_static_tokens(redis, keys, _write(path, [StaticToken.of("ci", "client", new)]))
    assert await store.verify(old) is None
    record = await store.verify(new)
    assert record is not None and record.name == "ci" and not record.revoked
    assert [r.name for r in await store.list()] == ["ci"]


async def test_a_token_the_file_no_longer_names_stops_working(
    redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    store = TokenStore(redis, keys)
    kept, dropped = new_token()[1], new_token()[1]
    path = tmp_path / "tokens.json"
    both = [StaticToken.of("ci", "client", kept), StaticToken.of("old-bot", "agent", dropped)]
    assert await import_static_tokens(redis, keys, _write(path, both)) == 2
    # A token made through the API is no file's business, whatever the file says.
    made, _ = await store.create("ops", "viewer")
    assert await store.verify(dropped) is not None

    assert await import_static_tokens(redis, keys, _write(path, both[:1])) == 1
    assert await store.verify(dropped) is None
    assert await store.verify(kept) is not None
    assert await store.verify(made) is not None
    assert sorted(r.name for r in await store.list()) == ["ci", "ops"]
    # Nothing left to remove: importing again changes nothing.
    assert await import_static_tokens(redis, keys, str(path)) == 0
