"""Alembic environment. `server.store.migrate` passes an open connection (and the schema) in
`config.attributes`; offline mode (`--sql`) renders the DDL for a DBA instead."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from server.store.tables import metadata

config = context.config


def _run(connection: Connection, schema: str | None) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=schema,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        version_table_schema=config.attributes.get("schema"),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _connection = config.attributes.get("connection")
    if not isinstance(_connection, Connection):
        raise RuntimeError("run migrations through server.store.migrate (python -m server.store migrate)")
    _run(_connection, config.attributes.get("schema"))
