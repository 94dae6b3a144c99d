"""Alembic revisions (a package only so that packaging ships them; Alembic ignores this file)."""
