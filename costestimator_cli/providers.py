"""Providers to compare, from `--provider key=value,...` flags or a CSV with the same keys as its header."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

from costestimator.v1 import common_pb2, estimate_service_pb2

from costestimator_cli.formatting import money_from_text

# Short keys (and the proto field names, so a CSV can use either) -> Provider field
KEYS = {
    "id": "provider_id", "provider_id": "provider_id",
    "name": "display_name", "display_name": "display_name",
    "network": "network_category", "network_category": "network_category",
    "tier": "benefit_tier_name", "benefit_tier_name": "benefit_tier_name",
    "type": "provider_type_code", "provider_type_code": "provider_type_code",
    "specialty": "provider_specialty_code", "provider_specialty_code": "provider_specialty_code",
    "designation": "provider_designation", "provider_designation": "provider_designation",
    "amount": "negotiated_amount", "negotiated_amount": "negotiated_amount",
}
NETWORKS = {
    "in": common_pb2.NETWORK_CATEGORY_IN_NETWORK, "in-network": common_pb2.NETWORK_CATEGORY_IN_NETWORK,
    "in_network": common_pb2.NETWORK_CATEGORY_IN_NETWORK,
    "out": common_pb2.NETWORK_CATEGORY_OUT_OF_NETWORK, "out-of-network": common_pb2.NETWORK_CATEGORY_OUT_OF_NETWORK,
    "out_of_network": common_pb2.NETWORK_CATEGORY_OUT_OF_NETWORK,
}
PROVIDER_HELP = ("a provider as key=value pairs separated by commas: id, amount (the negotiated price), network "
                 "(in|out), tier, type, specialty, designation, name; e.g. id=hospital,network=in,tier=2,type=HO,"
                 "amount=2400")


class ProviderSpecError(ValueError):
    """A provider flag or CSV row the CLI cannot read (said before any call)."""


def provider_from_fields(fields: Mapping[str, str], where: str) -> estimate_service_pb2.Provider:
    provider = estimate_service_pb2.Provider()
    for raw_key, raw_value in fields.items():
        key, value = (raw_key or "").strip().lower(), (raw_value or "").strip()
        if not value:
            continue
        if key not in KEYS:
            raise ProviderSpecError(f"{where}: unknown key {raw_key!r} (known: {', '.join(sorted(set(KEYS)))})")
        name = KEYS[key]
        if name == "network_category":
            network = NETWORKS.get(value.lower())
            if network is None:
                network = common_pb2.NetworkCategory.Value(value.upper()) if value.upper() in (
                    common_pb2.NetworkCategory.keys()) else None
            if network is None:
                raise ProviderSpecError(f"{where}: network must be in or out, not {value!r}")
            provider.network_category = network
        elif name == "negotiated_amount":
            try:
                provider.negotiated_amount.CopyFrom(money_from_text(value))
            except ValueError as exc:
                raise ProviderSpecError(f"{where}: {exc}") from None
        else:
            setattr(provider, name, value)
    return provider


def provider_from_flag(text: str) -> estimate_service_pb2.Provider:
    """'id=hospital,network=in,tier=2,amount=2400'."""
    fields: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, separator, value = part.partition("=")
        if not separator:
            raise ProviderSpecError(f"--provider {text!r}: {part!r} is not key=value")
        fields[key] = value
    return provider_from_fields(fields, f"--provider {text!r}")


def providers_from_csv(path: Path) -> list[estimate_service_pb2.Provider]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows: Iterable[dict[str, str]] = list(csv.DictReader(handle))
    except OSError as exc:
        raise ProviderSpecError(f"cannot read {path}: {exc.strerror}") from None
    return [provider_from_fields(row, f"{path.name} line {number}") for number, row in enumerate(rows, start=2)]
