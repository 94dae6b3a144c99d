"""D5: not-covered (EB `I`) lines of `summary.service_lines`, network-matched.

* No candidate STC has a cost share, and an `I` line lists one of them: the first such STC is used and not
  covered (the member pays everything, nothing is credited; RB H1).
* The chosen STC has a cost share and also an `I` line: covered is the point, not covered the high end.
Status codes 6–8 per STC, `E` exclusions and `O` medical necessity are not read.
"""

from __future__ import annotations

from collections.abc import Sequence

from server.domain.eligibility.summary import ServiceLine, ServiceLineKind

from .network import serves


def not_covered_lines(lines: Sequence[ServiceLine], stc: str, network: str) -> tuple[ServiceLine, ...]:
    return tuple(
        line for line in lines
        if line.kind is ServiceLineKind.NOT_COVERED and stc in line.service_type_codes
        and serves(line.network_code, network)
    )


def first_not_covered(
    lines: Sequence[ServiceLine], service_types: Sequence[str], network: str
) -> tuple[str, tuple[ServiceLine, ...]] | None:
    """The first candidate STC the payer lists as not covered in the network, with those lines."""
    for stc in service_types:
        found = not_covered_lines(lines, stc, network)
        if found:
            return stc, found
    return None
