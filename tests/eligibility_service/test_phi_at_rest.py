"""PHI at rest, end to end: the sandbox members through every eligibility RPC over a real socket, then the database
read directly (SQLite: the file bytes with its -wal/-shm; both backends: every column of every table as text).
None of the members' ids, names or birth dates may appear. Plus: a wrong or missing key stops the start, rotation
keeps old rows readable, and the data dir's files are private."""

from __future__ import annotations

import base64
import logging
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import grpc
import pytest
from costestimator.v1 import eligibility_service_pb2 as pb
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from server.app import Application
from server.settings import SettingsError, load_settings
from server.store import Keyring
from tests.eligibility_service.conftest import MakeApp
from tests.eligibility_service.helpers import (
    LEE,
    MAYA,
    MORGAN,
    PATEL,
    RIVERA,
    SHAH,
    Client,
    inquiry,
    status_name,
)

ROOT = Path(__file__).resolve().parents[2]
NOT_FOUND_UNKNOWN = ("SBX999999", "Taylor", "Nguyen", "1991-03-03")
NOT_FOUND_INVALID = ("XYZ-123", "Casey", "Whitfield", "1988-08-08")
RIVERA_WRONG_DOB = ("SBX100001", "Alex", "Rivera", "1985-04-13")
MEMBERS = [RIVERA, SHAH, LEE, PATEL, MORGAN, NOT_FOUND_UNKNOWN, NOT_FOUND_INVALID, RIVERA_WRONG_DOB,
           ("", "Maya", "Shah", "2012-06-05")]
# Base64 (the sealed values) is letters and digits: a needle counts only where it is not inside such a run.
_B64 = rb"A-Za-z0-9+/_=\-"


def needles() -> set[str]:
    """Every member id, name and birth date sent, in every format it could be stored in."""
    found: set[str] = set()
    for member_id, first, last, dob in MEMBERS:
        if member_id:
            found.add(member_id)
        for name in (first, last):
            found.update({name, name.upper()})
        found.update({dob, dob.replace("-", ""), dob.replace("-", "/")})
    return found


def leaks(blob: bytes, words: Iterable[str]) -> list[str]:
    out = []
    for word in sorted(words):
        pattern = rb"(?<![" + _B64 + rb"])" + re.escape(word.encode()) + rb"(?![" + _B64 + rb"])"
        if re.search(pattern, blob):
            out.append(word)
    return out


def _inquiries() -> list[pb.EligibilityInquiry]:
    return [
        inquiry(*RIVERA, policy_id="phi-policy"),
        inquiry(*SHAH, dependent=MAYA, relationship="19", policy_id="phi-policy"),
        inquiry(*LEE, policy_id="phi-policy"),
        inquiry(*PATEL, policy_id="phi-policy"),
        inquiry(*MORGAN, policy_id="phi-policy"),
        inquiry(*NOT_FOUND_UNKNOWN, policy_id="phi-policy"),
        inquiry(*NOT_FOUND_INVALID, policy_id="phi-policy"),
        inquiry(*RIVERA_WRONG_DOB, policy_id="phi-policy"),
    ]


async def _every_rpc(client: Client) -> list[str]:
    """Every eligibility RPC with every member; returns the check ids."""
    ids = []
    for inq in _inquiries():
        check = await client.check(inq, raw=True)
        ids.append(check.id)
    submitted = [await client.submit(inq) for inq in _inquiries()[:3]]
    for check in submitted:
        states = await client.watch(check.id)
        assert status_name(states[-1].status) == "VERIFIED"
        ids.append(check.id)
    for check_id in ids:
        got = await client.get(check_id, raw=True)
        assert got.id == check_id
    # The sealed values still read back through the API (raw response and summary).
    rivera = await client.get(ids[0], raw=True)
    assert status_name(rivera.status) == "VERIFIED" and rivera.summary.plan_name == "CHOICE PPO 2500"
    assert "RIVERA" in str(rivera.raw_response).upper()
    seen, token = [], ""
    while True:
        page = await client.list(policy_id="phi-policy", page_size=3, page_token=token)
        seen.extend(c.id for c in page.checks)
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(ids)
    stats = await client.stats("phi-policy")
    assert stats.total == len(ids) and stats.not_found == 3
    return ids


async def _columns_as_text(url: str, sqlite: bool) -> bytes:
    """Every column of every table, as text, read directly."""
    engine = create_async_engine(url)
    chunks: list[bytes] = []
    try:
        async with engine.connect() as conn:
            if sqlite:
                tables = [r[0] for r in await conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))]
            else:
                tables = [r[0] for r in await conn.execute(text(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"))]
            for table in tables:
                if sqlite:
                    for row in await conn.execute(text(f'SELECT * FROM "{table}"')):
                        for value in row:
                            chunks.append(value if isinstance(value, bytes) else str(value).encode())
                else:  # the whole row as PostgreSQL writes it out (the session's database holds every test's rows)
                    rows = await conn.execute(text(f'SELECT CAST(t AS text) FROM "{table}" AS t'))
                    chunks.extend(row[0].encode() for row in rows)
            if not sqlite:  # bytea would come out hex-encoded, hiding plain text from the scan
                binary = (await conn.execute(text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND data_type = 'bytea'"))).all()
                assert binary == [], f"scan these bytea columns as raw bytes: {binary}"
    finally:
        await engine.dispose()
    assert chunks, "nothing read from the database"
    return b"\n".join(chunks)


def _sqlite_files(data_dir: Path) -> bytes:
    files = sorted(data_dir.glob("costestimator.sqlite3*"))
    assert any(f.name.endswith("-wal") for f in files), files
    return b"".join(f.read_bytes() for f in files)


async def test_no_member_data_at_rest_after_every_rpc(
    el_app: Application, client: Client, backend: str, database_url: str | None
) -> None:
    await _every_rpc(client)
    words = needles()
    settings = el_app.settings
    url = settings.effective_database_url
    if backend == "sqlite":
        on_disk = _sqlite_files(Path(settings.data_dir))
        assert b"phi-policy" in on_disk  # the scan sees the rows (filter ids are in clear)
        assert leaks(on_disk, words) == []
    stored = await _columns_as_text(url, sqlite=backend == "sqlite")
    assert b"phi-policy" in stored and b"s1:" in stored
    assert leaks(stored, words) == []


def test_the_scan_would_see_plain_text() -> None:
    """The detector itself: a plain JSON payload is caught, a base64 run is not mistaken for a name."""
    assert leaks(b'{"lastName":"Rivera","dateOfBirth":"19850412"}', needles()) == ["19850412", "Rivera"]
    assert leaks(b"s1:" + base64.urlsafe_b64encode(b"\x00" * 40) + b"xLeex", {"Lee"}) == []


# ---------------------------------------------------------------- keys at start

# SQLite only: the session's PostgreSQL database must keep its key (the key check on PostgreSQL is in
# tests/store/test_sealing.py).
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_wrong_key_stops_the_start(make_app: MakeApp, backend: str) -> None:
    first = Keyring.new_entry("main")
    app = await make_app(data_key=first)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        assert app.dev_token is not None
        await Client(channel, app.dev_token).check(inquiry(*RIVERA))
    await app.stop(grace=0)
    with pytest.raises(SettingsError, match="'main' is not the key that sealed"):
        await make_app(data_key=Keyring.new_entry("main"))
    with pytest.raises(SettingsError, match=r"none of the configured data key ids \(other\)"):
        await make_app(data_key=Keyring.new_entry("other"))
    with pytest.raises(SettingsError, match="not valid base64"):
        await make_app(data_key="main:%%%")
    # Rotation: a new current key with the old one kept reads the old rows; after rotate-key the old key can go.
    new = Keyring.new_entry("next")
    rotated = await make_app(data_key=f"{new},{first}")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rotated.port}") as channel:
        assert rotated.dev_token is not None
        old_rows = (await Client(channel, rotated.dev_token).list()).checks
        assert [status_name(c.status) for c in old_rows] == ["VERIFIED"]
        assert old_rows[0].summary.plan_name == "CHOICE PPO 2500"
    await rotated.stop(grace=0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSTEST_") and k != "DATABASE_URL"}
    env |= {"COSTEST_DATA_KEY": f"{new},{first}", "COSTEST_DATA_DIR": str(rotated.settings.data_dir)}
    done = subprocess.run([sys.executable, "-m", "server.store", "rotate-key"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "re-sealed 1 request row(s) and 1 response row(s) under key id next" in done.stdout
    final = await make_app(data_key=new)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{final.port}") as channel:
        assert final.dev_token is not None
        (row,) = (await Client(channel, final.dev_token).list()).checks
        assert row.summary.plan_name == "CHOICE PPO 2500"


def test_no_key_beyond_loopback_stops_the_start(tmp_path: Path) -> None:
    auth = {"auth_hs256_secret": "s" * 40, "auth_issuer": "iss", "auth_audience": "aud", "data_dir": tmp_path}
    with pytest.raises(SettingsError, match="no data key is configured.*COSTEST_DATA_KEY"):
        load_settings(host="0.0.0.0", **auth)
    assert load_settings(host="0.0.0.0", data_key=Keyring.new_entry(), **auth).data_key_configured
    with pytest.raises(SettingsError, match="set one of COSTEST_DATA_KEY or COSTEST_DATA_KEY_FILE"):
        load_settings(data_key=Keyring.new_entry(), data_key_file=tmp_path / "k", data_dir=tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSTEST_") and k != "DATABASE_URL"}
    env |= {"COSTEST_HOST": "0.0.0.0", "COSTEST_AUTH_HS256_SECRET": "s" * 40, "COSTEST_AUTH_ISSUER": "iss",
            "COSTEST_AUTH_AUDIENCE": "aud", "COSTEST_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "server"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "COSTEST_DATA_KEY" in done.stderr, done.stderr
    assert not (tmp_path / "data" / "data-key").exists()


# ---------------------------------------------------------------- the data dir

# SQLite only: a development key is per data dir, and the shared PostgreSQL database has the session's key.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_development_key_and_private_data_dir(
    make_app: MakeApp, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    old_umask = os.umask(0o022)
    try:
        with caplog.at_level(logging.INFO):
            app = await make_app(data_key=None)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                assert app.dev_token is not None
                await Client(channel, app.dev_token).check(inquiry(*RIVERA))
    finally:
        os.umask(old_umask)
    data_dir = Path(app.settings.data_dir)
    key_file = data_dir / "data-key"
    key_text = key_file.read_text()
    secret = next(line for line in key_text.splitlines() if not line.startswith("#")).split(":", 1)[1]
    assert str(key_file) in caplog.text and secret not in caplog.text
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in data_dir.iterdir()}
    assert {"data-key", "page-token-secret", "costestimator.sqlite3", "costestimator.sqlite3-wal",
            "costestimator.sqlite3-shm"} <= set(modes)
    assert {name: mode for name, mode in modes.items() if mode != "0o600"} == {}
    await app.stop(grace=0)
    again = await make_app(data_key=None)  # the same key is found again: the rows stay readable
    async with grpc.aio.insecure_channel(f"127.0.0.1:{again.port}") as channel:
        assert again.dev_token is not None
        (row,) = (await Client(channel, again.dev_token).list()).checks
        assert row.summary.plan_name == "CHOICE PPO 2500"


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_row_that_does_not_open_is_an_error_status_never_garbage(
    el_app: Application, client: Client, backend: str
) -> None:
    """A sealed value moved into another row (or under an unknown key) is refused on read, whatever the RPC.

    SQLite only: rows are altered by hand in the test's own database file."""
    first = await client.check(inquiry(*RIVERA, policy_id="moved"))
    second = await client.check(inquiry(*LEE, policy_id="moved"))
    engine = create_async_engine(el_app.settings.effective_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "UPDATE eligibility_responses SET normalized_summary = (SELECT normalized_summary FROM "
                "eligibility_responses WHERE request_id = :a) WHERE request_id = :b"), {"a": first.id, "b": second.id})
    finally:
        await engine.dispose()
    assert (await client.get(first.id)).summary.plan_name == "CHOICE PPO 2500"
    for call in (lambda: client.get(second.id), lambda: client.list(policy_id="moved")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call()
        assert caught.value.code() is grpc.StatusCode.DATA_LOSS
        assert "decrypted" in (caught.value.details() or "")
        assert leaks(str(caught.value.details()).encode(), needles()) == []
