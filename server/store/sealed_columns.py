"""Which stored columns are sealed, and the row reference each is bound to (shared by the repository and rotation).

A sealed value's associated data names its table, column, tenant and check id (sealing.RowRef): the response
row has no tenant column, so its tenant comes from the request row it belongs to.
"""

from __future__ import annotations

from typing import Any

from .records import JSONObject
from .sealing import RowRef, Sealer
from .tables import eligibility_requests as req
from .tables import eligibility_responses as resp

REQUEST_COLUMN = "request_payload"
RAW_COLUMN = "raw_payload"
SUMMARY_COLUMN = "normalized_summary"


def request_ref(tenant_id: str, check_id: str) -> RowRef:
    return RowRef(req.name, REQUEST_COLUMN, tenant_id, check_id)


def response_ref(tenant_id: str, check_id: str, column: str) -> RowRef:
    return RowRef(resp.name, column, tenant_id, check_id)


class ResponseSeal:
    """Seals/opens the PHI columns of one response row."""

    def __init__(self, sealer: Sealer, tenant_id: str, check_id: str) -> None:
        self._sealer = sealer
        self._tenant_id = tenant_id
        self._check_id = check_id

    def seal(self, column: str, value: JSONObject | None) -> str | None:
        if value is None:
            return None
        return self._sealer.seal(dict(value), response_ref(self._tenant_id, self._check_id, column))

    def open(self, column: str, stored: Any, key_id: str | None) -> Any:
        if stored is None:
            return None
        return self._sealer.open(stored, key_id, response_ref(self._tenant_id, self._check_id, column))
