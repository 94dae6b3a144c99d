"""Typed store errors, so the API layer maps them in one place without knowing SQLAlchemy."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error raised on purpose by `server.store`."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is overloaded (connection refused, pool exhausted, lock timeout).

    Transient: the API answers UNAVAILABLE. The message names only the error type, never statement data.
    """
