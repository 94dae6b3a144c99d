"""Store maintenance commands.

    python -m server.store migrate [--database-url URL] [--data-dir DIR] [--schema NAME]
    python -m server.store current [--database-url URL] [--data-dir DIR] [--schema NAME]
    python -m server.store sql     --database-url URL [--schema NAME]

Without --database-url, DATABASE_URL (or COSTEST_DATABASE_URL) is used; without either, the embedded SQLite file
under --data-dir (default: COSTEST_DATA_DIR, else .data), created if missing. `migrate` is what the server runs
at start unless COSTEST_MIGRATE_ON_START=false; `sql` prints the DDL for a DBA to review.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from .engine import redacted, resolve_database_url
from .migrate import current_revision, head_revision, migrate, upgrade_sql


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server.store", description="eligibility store maintenance")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("migrate", "upgrade the database to the newest schema"),
        ("current", "print the database's schema revision and the newest one"),
        ("sql", "print the upgrade DDL without touching a database"),
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "sql":
        if not args.database_url:
            print("sql needs --database-url (it picks the SQL dialect)", file=sys.stderr)
            return 2
        sys.stdout.write(upgrade_sql(resolve_database_url(args.database_url, args.data_dir), schema=args.schema))
        return 0
    url = resolve_database_url(args.database_url, args.data_dir)
    if args.command == "migrate":
        asyncio.run(migrate(url, schema=args.schema))
        print(f"migrated {redacted(url)} to {head_revision()}")
        return 0
    current = asyncio.run(current_revision(url, schema=args.schema))
    print(f"{redacted(url)}: at {current or '(empty)'}, newest {head_revision()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
