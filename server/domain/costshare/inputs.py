"""What the chain reads (rule book §1): one coverage, the member's accumulators, and their vocabulary.

The dataclasses mirror the upstream APIs field for field and keep their loose spellings ("Y", "Yes", "OOP Max",
"Individual", "I"...) so the API layer can copy protobuf fields straight in; the chain normalises and refuses
(§1.1) with a field path in one place: the ``parse_*`` functions below.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final, TypeAlias

from server.domain.errors import InvalidInput
from server.domain.money import ZERO, parse_money, parse_percent

#: An upstream Y/N flag: a bool, or a string spelled Y/N, Yes/No, true/false in any case; None or blank is N.
Indicator: TypeAlias = bool | str | None

IN_NETWORK: Final = "I"
OUT_OF_NETWORK: Final = "O"


class AccumKind(StrEnum):
    """Normalised accumulator code (§1.3 rule 1)."""

    DEDUCTIBLE = "deductible"
    OOP = "oop"
    LIMIT = "limit"


class Level(StrEnum):
    INDIVIDUAL = "individual"
    FAMILY = "family"


class LimitType(StrEnum):
    """Unit of an accumulator: limits are dollar or counter; deductible and OOP are always dollar."""

    DOLLAR = "dollar"
    COUNTER = "counter"


@dataclass(frozen=True, slots=True)
class RelatedAccumulator:
    """One ``coverages[].relatedAccumulators[]`` entry: which accumulator the coverage uses."""

    code: str | None = None
    level: str | None = None
    network_indicator_code: str | None = None
    accum_ex_code: str | None = None
    deductible_code: str | None = None


@dataclass(frozen=True, slots=True)
class Coverage:
    """The selected benefit coverage (§1.1). Money is Decimal; ``coinsurance_percent`` 20 means 20 %."""

    is_service_covered: Indicator = None
    copay: Decimal | None = None
    coinsurance_percent: Decimal | None = None
    copay_applies_out_of_pocket: Indicator = None
    coins_applies_out_of_pocket: Indicator = None
    deductible_applies_out_of_pocket: Indicator = None
    copay_count_to_deductible: Indicator = None
    copay_continue_when_deductible_met: Indicator = None
    copay_continue_when_out_of_pocket_max_met: Indicator = None
    is_deductible_before_copay: Indicator = None
    network_category: str | None = None
    related_accumulators: tuple[RelatedAccumulator, ...] = ()


@dataclass(frozen=True, slots=True)
class MemberAccumulator:
    """One entry of the member's accumulators answer (§1.2); every value optional, as upstream."""

    code: str | None = None
    level: str | None = None
    network_indicator_code: str | None = None
    network_indicator: str | None = None
    accum_ex_code: str | None = None
    deductible_code: str | None = None
    limit_type: str | None = None
    limit_value: Decimal | None = None
    current_value: Decimal | None = None
    calculated_value: Decimal | None = None
    num_of_individuals_met: int | None = None
    num_of_individuals_needed_to_meet: int | None = None


def _squash(text: str) -> str:
    """Lower-case, letters and digits only: "OOP Max" and "oop-max" compare equal."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


_MISSING: Final = object()
_CACHE_LIMIT: Final = 256


def _memo(cache: dict[str, object], raw: str, value: object) -> None:
    """Remember a spelling; upstreams use a handful, so a small bound keeps hostile input from growing it."""
    if len(cache) < _CACHE_LIMIT:
        cache[raw] = value


_TRUE: Final = frozenset({"y", "yes", "true"})
_FALSE: Final = frozenset({"n", "no", "false", ""})
_CODES: Final = {
    "oopmax": AccumKind.OOP,
    "oop": AccumKind.OOP,
    "outofpocketmax": AccumKind.OOP,
    "deductible": AccumKind.DEDUCTIBLE,
    "limit": AccumKind.LIMIT,
    "": AccumKind.LIMIT,
}
_LEVELS: Final = {"individual": Level.INDIVIDUAL, "i": Level.INDIVIDUAL, "family": Level.FAMILY, "f": Level.FAMILY}
_NETWORKS: Final = {"i": IN_NETWORK, "innetwork": IN_NETWORK, "o": OUT_OF_NETWORK, "outofnetwork": OUT_OF_NETWORK}
_LIMIT_TYPES: Final = {"dollar": LimitType.DOLLAR, "counter": LimitType.COUNTER}


# Exact spellings seen so far, so the common case is one dict lookup.
_indicator_cache: dict[str, bool] = {"Y": True, "N": False}


def parse_indicator(value: Indicator, field: str) -> bool:
    """Y/N flag; a spelling outside the book's list is refused rather than guessed."""
    if value is None or value is False or value is True:
        return bool(value)
    if isinstance(value, str):
        known = _indicator_cache.get(value)
        if known is not None:
            return known
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            flag = word in _TRUE
            if len(_indicator_cache) < _CACHE_LIMIT:
                _indicator_cache[value] = flag
            return flag
    raise InvalidInput(field, f"must be Y/N, Yes/No or true/false, got {value!r}")


_code_cache: dict[str, object] = {}
_level_cache: dict[str, object] = {}
_network_cache: dict[str, object] = {}
_limit_type_cache: dict[str, object] = {}


def parse_code(code: str | None) -> AccumKind | None:
    """§1.3 rule 1; None means a code the chain does not model (ignored, not refused)."""
    raw = code or ""
    found = _code_cache.get(raw, _MISSING)
    if found is _MISSING:
        found = _CODES.get(_squash(raw))
        _memo(_code_cache, raw, found)
    return found  # type: ignore[return-value]


def parse_level(value: str | None, field: str) -> Level:
    raw = value or ""
    level = _level_cache.get(raw, _MISSING)
    if level is _MISSING:
        level = _LEVELS.get(_squash(raw))
        _memo(_level_cache, raw, level)
    if level is None:
        raise InvalidInput(field, f"must be Individual or Family, got {value!r}")
    return level  # type: ignore[return-value]


def parse_network(value: str | None) -> str | None:
    """I or O; an unfamiliar spelling stays its own token (it can only match itself); blank gives None."""
    if not value:
        return None
    found = _network_cache.get(value, _MISSING)
    if found is _MISSING:
        word = _squash(value)
        found = _NETWORKS.get(word, word.upper()) if word else None
        _memo(_network_cache, value, found)
    return found  # type: ignore[return-value]


def parse_limit_type(value: str | None) -> LimitType | None:
    """Dollar or counter; None for anything else (refused later only if the limit is positive, §1.1)."""
    raw = value or ""
    found = _limit_type_cache.get(raw, _MISSING)
    if found is _MISSING:
        found = _LIMIT_TYPES.get(_squash(raw))
        _memo(_limit_type_cache, raw, found)
    return found  # type: ignore[return-value]


@dataclass(slots=True)
class Terms:
    """The coverage's rules once parsed: what the handlers actually branch on (§1.1 table).

    Read-only by convention; not ``frozen`` because a frozen dataclass costs ~1 µs to build (see bench)."""

    covered: bool
    copay: Decimal
    percent: Decimal
    copay_to_oop: bool
    coins_to_oop: bool
    ded_to_oop: bool
    copay_to_ded: bool
    copay_after_ded: bool
    copay_after_oop: bool
    ded_first: bool


def parse_terms(coverage: Coverage) -> Terms:
    """Refuse what §1.1 refuses (negative copay, percent outside 0..100, sub-cent money, odd indicators)."""
    c = coverage
    return Terms(
        covered=parse_indicator(c.is_service_covered, "coverage.is_service_covered"),
        copay=ZERO if c.copay is None else parse_money(c.copay, "coverage.copay"),
        percent=ZERO if c.coinsurance_percent is None else parse_percent(
            c.coinsurance_percent, "coverage.coinsurance_percent"),
        copay_to_oop=parse_indicator(c.copay_applies_out_of_pocket, "coverage.copay_applies_out_of_pocket"),
        coins_to_oop=parse_indicator(c.coins_applies_out_of_pocket, "coverage.coins_applies_out_of_pocket"),
        ded_to_oop=parse_indicator(c.deductible_applies_out_of_pocket, "coverage.deductible_applies_out_of_pocket"),
        copay_to_ded=parse_indicator(c.copay_count_to_deductible, "coverage.copay_count_to_deductible"),
        copay_after_ded=parse_indicator(c.copay_continue_when_deductible_met,
                                        "coverage.copay_continue_when_deductible_met"),
        copay_after_oop=parse_indicator(c.copay_continue_when_out_of_pocket_max_met,
                                        "coverage.copay_continue_when_out_of_pocket_max_met"),
        ded_first=parse_indicator(c.is_deductible_before_copay, "coverage.is_deductible_before_copay"),
    )
