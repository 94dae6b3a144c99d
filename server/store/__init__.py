"""Eligibility store: SQLAlchemy 2 (async) tables, Alembic migrations and the repository.

Knows nothing of gRPC. Hands out frozen dataclasses (`CheckRecord`, `ResponseRecord`, `AttemptRecord`, `Stats`),
takes them for writes (`NewAttempt`, `Completion`) and raises typed errors (`InvalidPageToken`, `StoreUnavailable`,
`SealedDataError`: a stored value that cannot be opened). Member data is sealed at rest (sealing.py). Typical
wiring in the composition root:

    url = resolve_database_url(settings.database_url, settings.data_dir)
    if settings.migrate_on_start:
        await migrate(url)
    engine = create_engine_for(url)
    sealer = Sealer(Keyring.parse(key_text, where="COSTEST_DATA_KEY"))
    await verify_data_keys(engine, sealer)      # keycheck.py: a wrong key stops here
    repo = EligibilityRepository(engine, page_token_secret=secret, sealer=sealer)
    ...
    await close(engine)
"""

from .engine import PoolOptions, close, create_engine_for, redacted, resolve_database_url, sqlite_url_for
from .errors import DataKeyError, SealedDataError, StoreDeadlineExceeded, StoreError, StoreUnavailable
from .migrate import current_revision, head_revision, migrate
from .pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, InvalidPageToken
from .records import (
    EXPIRABLE_STATUSES,
    AttemptRecord,
    CheckMode,
    CheckRecord,
    CheckStatus,
    Completion,
    NewAttempt,
    NewCheck,
    ResponseRecord,
    Stats,
)
from .repository import EligibilityRepository
from .sealing import Keyring, Sealer

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "EXPIRABLE_STATUSES",
    "MAX_PAGE_SIZE",
    "AttemptRecord",
    "CheckMode",
    "CheckRecord",
    "CheckStatus",
    "Completion",
    "DataKeyError",
    "EligibilityRepository",
    "InvalidPageToken",
    "Keyring",
    "NewAttempt",
    "NewCheck",
    "PoolOptions",
    "ResponseRecord",
    "SealedDataError",
    "Sealer",
    "Stats",
    "StoreDeadlineExceeded",
    "StoreError",
    "StoreUnavailable",
    "close",
    "create_engine_for",
    "current_revision",
    "head_revision",
    "migrate",
    "redacted",
    "resolve_database_url",
    "sqlite_url_for",
]
