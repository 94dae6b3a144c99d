"""D2: procedure (CPT/HCPCS) and place of service -> candidate X12 service type codes, in preference order.

The table is the spec's, row for row; the first row whose codes contain the procedure wins. Explicit
`service_type_codes` in the request replace it. An unmapped procedure is never guessed (and never `30`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

Span = tuple[int, int]  # inclusive numeric range of CPT codes


@dataclass(frozen=True, slots=True)
class Row:
    spans: tuple[Span, ...]
    codes: frozenset[str]  # exact non-numeric codes (HCPCS)
    places: frozenset[str] | None  # None: any place of service (or none given)
    service_types: tuple[str, ...]
    label: str


def _row(label: str, stcs: tuple[str, ...], *spans: Span, codes: Sequence[str] = (),
         places: Sequence[str] | None = None) -> Row:
    return Row(tuple(spans), frozenset(codes), None if places is None else frozenset(places), stcs, label)


_EM: Final = ((99202, 99205), (99211, 99215))
TABLE: Final[tuple[Row, ...]] = (
    _row("E/M office visit at an urgent care facility", ("UC", "98", "BY", "96"), *_EM, places=("20",)),
    _row("E/M office visit in an emergency room", ("86",), *_EM, places=("23",)),
    _row("E/M office/outpatient visit", ("98", "BY", "96"), *_EM),
    _row("preventive visit", ("BZ", "98", "96"), (99381, 99387), (99391, 99397)),
    _row("emergency department visit", ("86",), (99281, 99285)),
    _row("urgent care centre", ("UC",), codes=("S9083", "S9088")),
    _row("chiropractic manipulation", ("33",), (98940, 98943)),
    _row("physical therapy", ("PT", "AE"), (97110, 97110), (97112, 97112), (97140, 97140), (97161, 97164),
         (97530, 97530)),
    _row("psychiatric evaluation / psychotherapy", ("A6", "MH"), (90791, 90792), (90832, 90838), (90846, 90847)),
    _row("MRI / CT", ("62", "4"), (70551, 70553), (72141, 72158), (73218, 73223), (73718, 73723), (70450, 70498),
         (71250, 71275), (72125, 72133), (74150, 74178)),
    _row("other radiology", ("4",), (70010, 79999)),
    _row("laboratory", ("5",), (80047, 89398)),
    _row("eye exam", ("AL",), (92002, 92014)),
)


def _matches(row: Row, code: str, place: str | None) -> bool:
    if row.places is not None and place not in row.places:
        return False
    if code in row.codes:
        return True
    if not code.isdigit():
        return False
    number = int(code)
    return any(lo <= number <= hi for lo, hi in row.spans)


def mapped_row(procedure: str, place_of_service: str | None) -> Row | None:
    """The D2 row of a procedure, or None when the table has none (the request must then name STCs)."""
    return next((row for row in TABLE if _matches(row, procedure, place_of_service or None)), None)


def candidate_service_types(
    procedure: str | None, explicit: Sequence[str], place_of_service: str | None
) -> tuple[str, ...]:
    """Explicit STCs (in order, duplicates dropped) win; else the table's row; () when neither gives any."""
    if explicit:
        return tuple(dict.fromkeys(explicit))
    if procedure:
        row = mapped_row(procedure, place_of_service)
        if row is not None:
            return row.service_types
    return ()
