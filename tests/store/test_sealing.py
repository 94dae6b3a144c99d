"""Member data sealed at rest: the cipher and keyring, the repository's sealed columns, the start-up key check,
rotation (resumable, idempotent, old rows readable until re-sealed), rows from before sealing, and file modes."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text, update
from alembic import command
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from server.store import (
    CheckStatus,
    Completion,
    DataKeyError,
    EligibilityRepository,
    Keyring,
    SealedDataError,
    Sealer,
    create_engine_for,
    current_revision,
    head_revision,
    migrate,
    sqlite_url_for,
)
from server.store.engine import writer
from server.store.keycheck import verify_data_keys
from server.store.keyfiles import load_keyring
from server.store.migrate import alembic_config
from server.store.rotation import has_plaintext_rows, reseal
from server.store.sealing import RowRef, derived_key_id
from server.store.tables import data_keys
from server.store.tables import eligibility_requests as req
from server.store.tables import eligibility_responses as resp
from tests.store.helpers import SECRET, Target, new_tenant

ROOT = Path(__file__).resolve().parents[2]
PAYLOAD = {"subscriber": {"memberId": "SBX100001", "firstName": "Alex", "lastName": "Rivera",
                          "dateOfBirth": "19850412"}, "tradingPartnerServiceId": "SBX01"}
RAW = {"subscriber": {"memberId": "SBX100001", "firstName": "ALEX", "lastName": "RIVERA",
                      "dateOfBirth": "19850412"}, "planStatus": [{"statusCode": "1"}]}
SUMMARY = {"subscriber": {"name": "Alex Rivera", "birth_date": "1985-04-12"}, "plan_name": "CHOICE PPO 2500"}
PHI = ["SBX100001", "Alex", "ALEX", "Rivera", "RIVERA", "19850412", "1985-04-12"]
WHERE = RowRef("eligibility_requests", "request_payload", "tenant-a", "row-1")


def ring(*entries: str) -> Keyring:
    return Keyring.parse(",".join(entries), where="test")


def sealer(*entries: str) -> Sealer:
    return Sealer(ring(*entries))


def key_b64(byte: int) -> str:
    return base64.b64encode(bytes([byte]) * 32).decode()


# ---------------------------------------------------------------- cipher and keyring

def test_sealed_value_opens_only_in_its_own_row_and_column() -> None:
    s = sealer(Keyring.new_entry("k1"))
    stored = s.seal(PAYLOAD, WHERE)
    assert not any(p in stored for p in PHI)
    assert s.open(stored, "k1", WHERE) == PAYLOAD
    for moved in (RowRef(WHERE.table, WHERE.column, WHERE.tenant_id, "row-2"),
                  RowRef(WHERE.table, WHERE.column, "tenant-b", WHERE.row_id),
                  RowRef("eligibility_responses", "raw_payload", WHERE.tenant_id, WHERE.row_id)):
        with pytest.raises(SealedDataError, match="wrong key, or the value was altered or moved"):
            s.open(stored, "k1", moved)
    assert s.seal(PAYLOAD, WHERE) != stored  # a fresh nonce every time


def test_open_refuses_unknown_key_wrong_key_tampering_and_plain_text() -> None:
    s = sealer("k1:" + key_b64(1))
    stored = s.seal(PAYLOAD, WHERE)
    with pytest.raises(SealedDataError, match="'k9', which is not configured"):
        s.open(stored, "k9", WHERE)
    with pytest.raises(SealedDataError, match="does not open with data key id 'k1'"):
        sealer("k1:" + key_b64(2)).open(stored, "k1", WHERE)
    tampered = stored[:-6] + ("AAAAAA" if not stored.endswith("AAAAAA") else "BBBBBB")
    with pytest.raises(SealedDataError):
        s.open(tampered, "k1", WHERE)
    with pytest.raises(SealedDataError, match="is not sealed"):
        s.open(PAYLOAD, None, WHERE)
    with pytest.raises(SealedDataError, match="is not sealed"):
        s.open(stored, None, WHERE)


def test_keyring_formats() -> None:
    secret = bytes(range(32))
    bare = base64.b64encode(secret).decode()
    assert ring(bare).current.key_id == derived_key_id(secret)
    urlsafe = base64.urlsafe_b64encode(secret).decode()
    assert ring(urlsafe).current.secret == secret
    text_file = f"# keys\n\nnew-2026:{key_b64(3)}   # current\nold-2025:{key_b64(4)}\n"
    parsed = Keyring.parse(text_file, where="file")
    assert parsed.current.key_id == "new-2026" and parsed.ids == ["new-2026", "old-2025"]
    assert ring(f"a:{key_b64(5)}", f"b:{key_b64(6)}").ids == ["a", "b"]


@pytest.mark.parametrize(("text_", "message"), [
    ("", "no data key"),
    ("k1:not*base64", "not valid base64"),
    ("k1:" + base64.b64encode(b"short").decode(), "exactly 32 bytes, got 5"),
    (f"k1:{key_b64(1)},k1:{key_b64(2)}", "appears twice"),
    (f"bad id!:{key_b64(1)}", "must be 1-32 characters"),
])
def test_bad_keyrings_are_refused_without_echoing_key_material(text_: str, message: str) -> None:
    with pytest.raises(DataKeyError, match=message) as caught:
        Keyring.parse(text_, where="COSTEST_DATA_KEY")
    assert key_b64(1) not in str(caught.value) and key_b64(2) not in str(caught.value)
    assert "COSTEST_DATA_KEY" in str(caught.value) or "twice" in message or "characters" in message


def test_sealer_repr_carries_no_key() -> None:
    entry = "k1:" + key_b64(7)
    assert key_b64(7) not in repr(sealer(entry)) and str(bytes([7]) * 32) not in repr(ring(entry).current)


def test_development_key_file_is_generated_0600_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first, source = load_keyring(key_text=None, key_file=None, data_dir=data_dir, dev_key="generate")
    key_file = data_dir / "data-key"
    assert str(key_file) in source
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    again, _ = load_keyring(key_text=None, key_file=None, data_dir=data_dir, dev_key="existing")
    assert again.current == first.current
    with pytest.raises(DataKeyError, match="no data key configured"):
        load_keyring(key_text=None, key_file=None, data_dir=tmp_path / "other", dev_key="never")
    with pytest.raises(DataKeyError, match="cannot read"):
        load_keyring(key_text=None, key_file=tmp_path / "missing", data_dir=data_dir, dev_key="never")


# ---------------------------------------------------------------- the repository's sealed columns

async def _all_text(engine: AsyncEngine) -> str:
    """Every column of every eligibility table, as text, straight from the database."""
    chunks: list[str] = []
    async with engine.connect() as conn:
        for table in (req, resp):
            for row in (await conn.execute(select(table))).all():
                chunks.extend(str(v) for v in row)
    return "\n".join(chunks)


async def _complete_one(repo: EligibilityRepository, tenant: str) -> str:
    record = await repo.create_pending(tenant, payer_id="SBX01", request_payload=PAYLOAD, policy_id="policy-1")
    completion = Completion(CheckStatus.VERIFIED, raw=RAW, summary=SUMMARY, http_status=200)
    assert await repo.complete(tenant, record.id, completion)
    return record.id


async def test_repository_stores_only_sealed_values_and_reads_them_back(engine: AsyncEngine) -> None:
    s = sealer(Keyring.new_entry())
    repo = EligibilityRepository(engine, page_token_secret=SECRET, sealer=s)
    tenant = new_tenant()
    check_id = await _complete_one(repo, tenant)
    stored = await _all_text(engine)
    assert check_id in stored and "policy-1" in stored  # filter columns stay in clear
    assert [p for p in PHI if p in stored] == []
    got = await repo.get(tenant, check_id)
    assert got is not None and got.request_payload == PAYLOAD
    assert got.response is not None and got.response.raw == RAW and got.response.summary == SUMMARY
    (listed,), _ = await repo.list(tenant, policy_id="policy-1", include_raw=True)
    assert listed.response is not None and listed.response.raw == RAW
    async with engine.connect() as conn:
        ids = (await conn.execute(select(req.c.data_key_id, resp.c.data_key_id).join(
            resp, resp.c.request_id == req.c.id).where(req.c.id == check_id))).one()
    assert tuple(ids) == (s.key_id, s.key_id)


async def test_a_ciphertext_moved_to_another_row_or_a_wrong_key_raises_on_read(engine: AsyncEngine) -> None:
    s = sealer(Keyring.new_entry())
    repo = EligibilityRepository(engine, page_token_secret=SECRET, sealer=s)
    tenant = new_tenant()
    first, second = await _complete_one(repo, tenant), await _complete_one(repo, tenant)
    async with engine.begin() as conn:
        payload = (await conn.execute(select(req.c.request_payload).where(req.c.id == first))).scalar_one()
        await conn.execute(update(req).where(req.c.id == second).values(request_payload=payload))
    with pytest.raises(SealedDataError, match=f"request_payload of row {second}"):
        await repo.get(tenant, second)
    assert (await repo.get(tenant, first)) is not None
    stranger = EligibilityRepository(engine, page_token_secret=SECRET, sealer=sealer(Keyring.new_entry()))
    with pytest.raises(SealedDataError, match="not configured"):
        await stranger.get(tenant, first)
    with pytest.raises(SealedDataError):
        await stranger.list(tenant)


# ---------------------------------------------------------------- start-up key check

async def _clear_keys(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(data_keys.delete())


async def test_key_check_registers_then_refuses_a_wrong_or_foreign_key(engine: AsyncEngine) -> None:
    await _clear_keys(engine)
    good = "k-main:" + key_b64(11)
    await verify_data_keys(engine, sealer(good))  # registers k-main
    await verify_data_keys(engine, sealer(good))  # idempotent
    with pytest.raises(DataKeyError, match="'k-main' is not the key") as wrong:
        await verify_data_keys(engine, sealer("k-main:" + key_b64(12)))
    assert key_b64(12) not in str(wrong.value)
    with pytest.raises(DataKeyError, match="none of the configured data key ids"):
        await verify_data_keys(engine, sealer("k-other:" + key_b64(13)))
    # Rotation: a new current key next to the old one is accepted and registered.
    await verify_data_keys(engine, sealer("k-new:" + key_b64(14), good))
    async with engine.connect() as conn:
        assert set((await conn.execute(select(data_keys.c.key_id))).scalars()) == {"k-main", "k-new"}


# ---------------------------------------------------------------- rotation and rows from before sealing

async def test_rotation_reseals_in_resumable_idempotent_batches(engine: AsyncEngine) -> None:
    await _clear_keys(engine)
    old_entry, new_entry = "old:" + key_b64(21), "new:" + key_b64(22)
    old = sealer(old_entry)
    await verify_data_keys(engine, old)
    tenant = new_tenant()
    old_repo = EligibilityRepository(engine, page_token_secret=SECRET, sealer=old)
    ids = [await _complete_one(old_repo, tenant) for _ in range(5)]
    both = sealer(new_entry, old_entry)
    await verify_data_keys(engine, both)
    both_repo = EligibilityRepository(engine, page_token_secret=SECRET, sealer=both)
    # Old rows stay readable under the new keyring until they are re-sealed; new writes use the new key.
    for check_id in ids:
        assert (await both_repo.get(tenant, check_id)) is not None
    ids.append(await _complete_one(both_repo, tenant))

    class Interrupted(Exception):
        pass

    def stop_after_first_batch(table: str, done: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        await reseal(engine, both, batch_size=2, progress=stop_after_first_batch)
    async with engine.connect() as conn:
        keys = list((await conn.execute(select(req.c.data_key_id).where(req.c.tenant_id == tenant))).scalars())
    assert keys.count("new") == 3 and keys.count("old") == 3  # one batch of 2 done, plus the new write

    report = await reseal(engine, both, batch_size=2)
    assert (report.requests, report.responses, report.retired) == (3, 5, ["old"])
    again = await reseal(engine, both, batch_size=2)
    assert (again.requests, again.responses) == (0, 0)
    new_only = EligibilityRepository(engine, page_token_secret=SECRET, sealer=sealer(new_entry))
    for check_id in ids:
        got = await new_only.get(tenant, check_id)
        assert got is not None and got.request_payload == PAYLOAD
        assert got.response is not None and got.response.raw == RAW
    with pytest.raises(SealedDataError):
        await old_repo.get(tenant, ids[0])
    await verify_data_keys(engine, sealer(new_entry))  # the old key may now be removed from the keyring


async def _insert_plain_row(engine: AsyncEngine, tenant: str, check_id: str) -> None:
    """A row as revision 0001 stored it: plain JSON, no key id."""
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(insert(req).values(
            id=check_id, tenant_id=tenant, payer_id="SBX01", status="VERIFIED", mode="sync", requested_at=now,
            updated_at=now, completed_at=now, request_payload=PAYLOAD, attempts=1, version=2))
        await conn.execute(insert(resp).values(request_id=check_id, http_status=200, raw_payload=RAW,
                                               normalized_summary=SUMMARY, created_at=now))


async def test_rows_from_before_sealing_are_refused_on_read_then_sealed(engine: AsyncEngine) -> None:
    s = sealer(Keyring.new_entry())
    tenant, check_id = new_tenant(), "00000000-0000-4000-8000-" + os.urandom(6).hex()
    await _insert_plain_row(engine, tenant, check_id)
    repo = EligibilityRepository(engine, page_token_secret=SECRET, sealer=s)
    assert await has_plaintext_rows(engine)
    with pytest.raises(SealedDataError, match="is not sealed; run `python -m server.store rotate-key`"):
        await repo.get(tenant, check_id)
    report = await reseal(engine, s, only_plaintext=True)
    assert report.plaintext == 2 and not await has_plaintext_rows(engine)
    got = await repo.get(tenant, check_id)
    assert got is not None and got.request_payload == PAYLOAD and got.response is not None
    assert got.response.summary == SUMMARY
    assert [p for p in PHI if p in await _all_text(engine)] == []


async def test_migration_from_0001_keeps_rows_and_foreign_keys(tmp_path: Path) -> None:
    """0002 only adds columns: SQLite rebuilding a parent table would have cascaded deletes into the responses."""
    url = sqlite_url_for(tmp_path / "data")
    await migrate(url, revision="0001")
    engine = create_engine_for(url)
    try:
        tenant = new_tenant()
        async with engine.begin() as conn:
            now = datetime.now(UTC).replace(tzinfo=None)
            await conn.execute(text(
                "INSERT INTO eligibility_requests (id, tenant_id, payer_id, status, mode, requested_at, updated_at,"
                " request_payload, attempts, version) VALUES ('c1', :t, 'SBX01', 'VERIFIED', 'sync', :n, :n,"
                " :p, 1, 2)"), {"t": tenant, "n": now, "p": '{"memberId": "SBX100001"}'})
            await conn.execute(text(
                "INSERT INTO eligibility_responses (request_id, http_status, raw_payload, created_at)"
                " VALUES ('c1', 200, :r, :n)"), {"r": '{"lastName": "RIVERA"}', "n": now})
        await migrate(url)
        s = sealer(Keyring.new_entry())
        assert (await reseal(engine, s, only_plaintext=True)).plaintext == 2
        got = await EligibilityRepository(engine, page_token_secret=SECRET, sealer=s).get(tenant, "c1")
        assert got is not None and got.request_payload == {"memberId": "SBX100001"}
        assert got.response is not None and got.response.raw == {"lastName": "RIVERA"}
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- files

def _modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


async def test_sqlite_files_are_created_0600_in_a_0700_dir(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        data_dir = tmp_path / "data"
        url = sqlite_url_for(data_dir)
        await migrate(url)
        engine = create_engine_for(url)
        try:
            repo = EligibilityRepository(engine, page_token_secret=SECRET, sealer=sealer(Keyring.new_entry()))
            await _complete_one(repo, new_tenant())
            modes = _modes(data_dir)
            assert {"costestimator.sqlite3", "costestimator.sqlite3-wal", "costestimator.sqlite3-shm"} <= set(modes)
            assert {name: mode for name, mode in modes.items() if mode != 0o600} == {}
            assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        finally:
            await engine.dispose()
    finally:
        os.umask(old_umask)


async def test_files_an_older_version_left_0644_are_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    url = sqlite_url_for(data_dir)
    await migrate(url)
    db = data_dir / "costestimator.sqlite3"
    db.chmod(0o644)
    engine = create_engine_for(url)
    await engine.dispose()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


# ---------------------------------------------------------------- the command

def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("COSTEST_") and k != "DATABASE_URL"}
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "server.store", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=120)


async def test_rotate_key_command(tmp_path: Path) -> None:
    data_dir = tmp_path / "cli-data"
    url = sqlite_url_for(data_dir)
    await migrate(url)
    old_entry = Keyring.new_entry("old")
    engine = create_engine_for(url)
    try:
        await verify_data_keys(engine, sealer(old_entry))
        tenant = new_tenant()
        check_id = await _complete_one(
            EligibilityRepository(engine, page_token_secret=SECRET, sealer=sealer(old_entry)), tenant)
    finally:
        await engine.dispose()
    new_entry = _cli("new-key", "new", env={}).stdout.strip()
    assert new_entry.startswith("new:") and len(base64.b64decode(new_entry[4:])) == 32
    key_file = tmp_path / "keys"
    key_file.write_text(f"{new_entry}\n{old_entry}\n")
    done = _cli("rotate-key", "--data-dir", str(data_dir), "--batch-size", "1",
                env={"COSTEST_DATA_KEY_FILE": str(key_file)})
    assert done.returncode == 0, done.stderr
    assert "re-sealed 1 request row(s) and 1 response row(s) under key id new" in done.stdout
    assert "key id(s) old any more" in done.stdout
    assert old_entry.split(":")[1] not in done.stdout + done.stderr
    engine = create_engine_for(url)
    try:
        got = await EligibilityRepository(engine, page_token_secret=SECRET, sealer=sealer(new_entry)).get(
            tenant, check_id)
        assert got is not None and got.request_payload == PAYLOAD
    finally:
        await engine.dispose()
    refused = _cli("rotate-key", "--data-dir", str(data_dir), env={"COSTEST_DATA_KEY": Keyring.new_entry("x")})
    assert refused.returncode == 2 and "none of the configured data key ids (x)" in refused.stderr


def _downgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


# SQLite only: the PostgreSQL schema is shared by the session's tests.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_downgrade_refuses_while_sealed_rows_exist(engine: AsyncEngine, target: Target) -> None:
    repo = EligibilityRepository(engine, page_token_secret=SECRET, sealer=sealer(Keyring.new_entry()))
    tenant = new_tenant()
    check_id = await _complete_one(repo, tenant)
    with pytest.raises(RuntimeError, match="holds sealed rows"):
        async with writer(engine).begin() as conn:
            await conn.run_sync(_downgrade, "0001")
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM eligibility_requests WHERE id = :i"), {"i": check_id})
    async with writer(engine).begin() as conn:
        await conn.run_sync(_downgrade, "0001")
    assert await current_revision(target.url) == "0001"
    await migrate(target.url)
    assert await current_revision(target.url) == head_revision()
