"""Alembic migrations of the eligibility store; run them with `server.store.migrate` (no alembic.ini needed)."""
