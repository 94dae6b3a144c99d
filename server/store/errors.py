"""Typed store errors, so the API layer maps them in one place without knowing SQLAlchemy."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error raised on purpose by `server.store`."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is overloaded (connection refused, pool exhausted, lock timeout).

    Transient: the API answers UNAVAILABLE. The message names only the error type, never statement data.
    """


class StoreDeadlineExceeded(StoreError, TimeoutError):
    """The caller's deadline (nearer than the store timeout) passed before the database answered.

    A `TimeoutError`, so the API answers DEADLINE_EXCEEDED: the database may be fine, the caller was in a hurry.
    """
