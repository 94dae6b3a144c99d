"""The payer's MSG texts, normalized for phrase matching (D4 step 2, D6): upper-case, every run of
non-alphanumerics one space, padded with spaces, so " PCP " matches a word and never part of one."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

_NON_ALNUM: Final = re.compile(r"[^0-9A-Z]+")


def normalized(text: str) -> str:
    return f" {_NON_ALNUM.sub(' ', text.upper()).strip()} "


def any_contains(texts: Iterable[str], phrases: Iterable[str]) -> bool:
    wanted = tuple(phrases)
    return any(p in normalized(t) for t in texts for p in wanted)
