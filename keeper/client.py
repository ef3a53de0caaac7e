"""HTTP client of the keeper API (what a participant's app or the CLI uses)."""

from __future__ import annotations

from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct

from gridcoop_sdk.exceptions import GridcoopError
from gridcoop_sdk.orders import SignedOrder


class KeeperClientError(GridcoopError, RuntimeError):
    """The keeper refused a request; ``status`` is the HTTP code, ``field`` what was wrong."""

    def __init__(self, status: int, message: str, field: str | None = None):
        self.status, self.field = status, field
        # status 0: no HTTP answer at all (the message says the keeper cannot be reached)
        super().__init__(message if status == 0 else f"keeper refused ({status}): {message}")


class KeeperClient:
    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def _do(self, method: str, path: str, **kw) -> Any:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else (str(exc) or type(exc).__name__)
            raise KeeperClientError(0, f"cannot reach the keeper at {self.base_url} ({reason}): is it running "
                                       "(gridcoop keeper serve), and is the URL right (--keeper-url or "
                                       "$GRIDCOOP_KEEPER_URL)?") from exc
        try:
            data = r.json()
        except ValueError:
            data = {"error": r.text[:200]}
        if r.status_code >= 400:
            raise KeeperClientError(r.status_code, data.get("error", "?"), data.get("field"))
        return data

    def submit_order(self, signed: SignedOrder, prefer: list[str] | tuple[str, ...] = ()) -> dict:
        """Submit ``signed``; ``prefer``: ranked preferred partners (matched first, not required)."""
        body = signed.to_dict()
        if prefer:
            body["prefer"] = list(prefer)
        return self._do("POST", "/v1/orders", json=body)

    def orders(self, interval: int | None = None, maker: str | None = None, status: str | None = None) -> list[dict]:
        params = {k: v for k, v in (("interval", interval), ("maker", maker), ("status", status)) if v is not None}
        return self._do("GET", "/v1/orders", params=params)["orders"]

    def order(self, order_hash: str) -> dict:
        return self._do("GET", f"/v1/orders/{order_hash}")

    def cancel(self, order_hash: str, private_key: Any) -> dict:
        sig = Account.sign_message(encode_defunct(bytes.fromhex(order_hash.removeprefix("0x"))), private_key)
        return self._do("DELETE", f"/v1/orders/{order_hash}", json={"signature": "0x" + bytes(sig.signature).hex()})

    def interval(self, interval_id: int) -> dict:
        return self._do("GET", f"/v1/intervals/{interval_id}")

    def health(self) -> dict:
        return self._do("GET", "/v1/health")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KeeperClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
