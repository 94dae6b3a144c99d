"""What a use case needs of a metric: `inc()`. The composition root hands in Prometheus children; the use cases
import no metrics library, and the default costs one no-op call."""

from __future__ import annotations

from typing import Protocol


class Count(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _NoCount:
    def inc(self, amount: float = 1) -> None:
        """Nothing to count into (tests, tools)."""


NO_COUNT: Count = _NoCount()


def no_outcome(_status: str, _count: int = 1) -> None:
    """The default outcome listener: nothing listens."""
