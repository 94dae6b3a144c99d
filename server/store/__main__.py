"""Store maintenance commands.

    python -m server.store migrate [--database-url URL] [--data-dir DIR] [--schema NAME]
    python -m server.store current [--database-url URL] [--data-dir DIR] [--schema NAME]
    python -m server.store sql     --database-url URL [--schema NAME]
    python -m server.store rotate-key [--database-url URL] [--data-dir DIR] [--schema NAME] [--batch-size N]
    python -m server.store new-key [KEY_ID]

Without --database-url, DATABASE_URL (or COSTEST_DATABASE_URL) is used; without either, the embedded SQLite file
under --data-dir (default: COSTEST_DATA_DIR, else .data), created if missing. `migrate` is what the server runs
at start unless COSTEST_MIGRATE_ON_START=false; `sql` prints the DDL for a DBA to review.

`rotate-key` re-seals every row not under the current data key (and seals rows stored before encryption at rest)
in batches; it is idempotent and resumable. Keys come from COSTEST_DATA_KEY or COSTEST_DATA_KEY_FILE (else the
development key file in the data dir). `new-key` prints a fresh keyring entry `<key id>:<base64>`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .engine import create_engine_for, redacted, resolve_database_url
from .errors import StoreError
from .keycheck import verify_data_keys
from .keyfiles import load_keyring
from .migrate import current_revision, head_revision, migrate, upgrade_sql
from .rotation import DEFAULT_BATCH, reseal
from .sealing import Keyring, Sealer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server.store", description="eligibility store maintenance")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("migrate", "upgrade the database to the newest schema"),
        ("current", "print the database's schema revision and the newest one"),
        ("sql", "print the upgrade DDL without touching a database"),
        ("rotate-key", "re-seal every stored row under the current data key (resumable)"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument(
            "--database-url",
            default=os.environ.get("COSTEST_DATABASE_URL") or os.environ.get("DATABASE_URL"),
            help="sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db (default: $DATABASE_URL)",
        )
        cmd.add_argument(
            "--data-dir",
            default=os.environ.get("COSTEST_DATA_DIR", ".data"),
            help="directory of the embedded SQLite file when no database URL is given (default: .data)",
        )
        cmd.add_argument("--schema", default=None, help="PostgreSQL schema (default: the search_path's first)")
        if name == "rotate-key":
            cmd.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="rows per transaction")
    new_key = sub.add_parser("new-key", help="print a new random data key entry `<key id>:<base64>`")
    new_key.add_argument("key_id", nargs="?", default=None, help="key id (default: derived from the key)")
    return parser


async def _rotate(url: str, schema: str | None, data_dir: str, batch_size: int) -> int:
    if (current := await current_revision(url, schema=schema)) != head_revision():
        print(f"the database is at revision {current or 'none'}; run `python -m server.store migrate` first",
              file=sys.stderr)
        return 2
    key_file = os.environ.get("COSTEST_DATA_KEY_FILE")
    keyring, source = load_keyring(key_text=os.environ.get("COSTEST_DATA_KEY"),
                                   key_file=Path(key_file) if key_file else None,
                                   data_dir=Path(data_dir), dev_key="existing")
    sealer = Sealer(keyring)
    print(f"current data key id {sealer.key_id} (from {source}); keyring ids: {', '.join(keyring.ids)}")
    engine = create_engine_for(url, schema=schema)
    try:
        await verify_data_keys(engine, sealer)
        report = await reseal(engine, sealer, batch_size=batch_size,
                              progress=lambda table, done: print(f"  {table}: {done} row(s) re-sealed"))
    finally:
        await engine.dispose()
    print(f"re-sealed {report.requests} request row(s) and {report.responses} response row(s) under key id "
          f"{sealer.key_id} ({report.plaintext} had never been sealed)")
    if report.retired:
        print(f"no row is sealed under key id(s) {', '.join(report.retired)} any more: they may be removed")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "new-key":
        print(Keyring.new_entry(args.key_id))
        return 0
    if args.command == "sql":
        if not args.database_url:
            print("sql needs --database-url (it picks the SQL dialect)", file=sys.stderr)
            return 2
        sys.stdout.write(upgrade_sql(resolve_database_url(args.database_url, args.data_dir), schema=args.schema))
        return 0
    url = resolve_database_url(args.database_url, args.data_dir)
    if args.command == "rotate-key":
        try:
            return asyncio.run(_rotate(url, args.schema, args.data_dir, args.batch_size))
        except StoreError as exc:  # DataKeyError / SealedDataError: ids and row ids only, never key or data
            print(f"rotate-key: {exc}", file=sys.stderr)
            return 2
    if args.command == "migrate":
        asyncio.run(migrate(url, schema=args.schema))
        print(f"migrated {redacted(url)} to {head_revision()}")
        return 0
    current = asyncio.run(current_revision(url, schema=args.schema))
    print(f"{redacted(url)}: at {current or '(empty)'}, newest {head_revision()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
