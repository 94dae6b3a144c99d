"""NPI check digit (Luhn with the 80840 card-issuer prefix).

Stedi only accepts NPIs that pass this check, so we reject bad ones before paying for a call.
"""

from __future__ import annotations

# Luhn contribution of the fixed "80840" prefix, per the CMS NPI standard.
_PREFIX_SUM = 24


def npi_check_digit(base: str) -> int:
    """Return the check digit for the 9-digit NPI base."""
    if len(base) != 9 or not base.isascii() or not base.isdigit():
        raise ValueError("an NPI base is exactly 9 digits")
    total = _PREFIX_SUM
    # Double every second digit starting from the rightmost one of the base.
    for position, char in enumerate(reversed(base)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def is_valid_npi(npi: str) -> bool:
    """True when `npi` is exactly 10 ASCII digits with a correct check digit."""
    if len(npi) != 10 or not npi.isascii() or not npi.isdigit():
        return False
    return npi_check_digit(npi[:9]) == int(npi[9])
