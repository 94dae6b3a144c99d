"""Typed store errors, so the API layer maps them in one place without knowing SQLAlchemy."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error raised on purpose by `server.store`."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is overloaded (connection refused, pool exhausted, lock timeout).

    Transient: the API answers UNAVAILABLE. The message names only the error type, never statement data.
    """


class DataKeyError(StoreError):
    """The configured data keys are unusable (malformed, or not the keys this database was sealed with).

    Raised at start (and by `rotate-key`); the message names key ids and variables, never key material.
    """


class SealedDataError(StoreError):
    """A stored value cannot be opened: its key id is not configured, the key is wrong, the value was altered or
    moved from another row, or the row was never sealed. Never answered with garbage or plain text.

    Not transient and not the caller's fault: the API answers DATA_LOSS with a fixed message (the exception's
    message names table, column and check id only, never member data).
    """


class StoreDeadlineExceeded(StoreError, TimeoutError):
    """The caller's deadline (nearer than the store timeout) passed before the database answered.

    A `TimeoutError`, so the API answers DEADLINE_EXCEEDED: the database may be fine, the caller was in a hurry.
    """
