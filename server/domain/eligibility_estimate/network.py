"""Which network bucket a 271 line feeds (EL §4 step 4): Y -> in, N -> out, W / U / missing -> both."""

from __future__ import annotations

from typing import Final

IN: Final = "in"
OUT: Final = "out"
CHAIN_CODE: Final = {IN: "I", OUT: "O"}  # the chain's network_indicator_code


def serves(network_code: str | None, network: str) -> bool:
    if network_code == "Y":
        return network == IN
    if network_code == "N":
        return network == OUT
    return True
