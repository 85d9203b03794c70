"""A small synchronous HTTP client for a node's API (standard library only)."""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

RESPONSE_SIZE_MAX = 64 * 1024 * 1024


class ClientError(Exception):
    """The node refused a request (status and reason from its answer) or could not be reached."""

    def __init__(self, status: int, reason: str, code: str | None = None) -> None:
        super().__init__(f"{status}: {reason}" if status else reason)
        self.status = status
        self.reason = reason
        self.code = code


class Client:
    def __init__(self, base_url: str, chain_id: str = "main", timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.chain_id = chain_id
        self.timeout_s = timeout_s

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read(RESPONSE_SIZE_MAX))
        except urllib.error.HTTPError as exc:
            try:
                doc = json.loads(exc.read(RESPONSE_SIZE_MAX))
                reason, code = str(doc.get("error", exc.reason)), doc.get("code")
            except (ValueError, AttributeError):  # not JSON, or not an object
                reason, code = str(exc.reason), None
            raise ClientError(exc.code, reason, code) from None
        except (urllib.error.URLError, OSError) as exc:
            why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise ClientError(0, f"cannot reach {self.base_url}: {why}") from None
        except (http.client.HTTPException, json.JSONDecodeError, UnicodeDecodeError) as exc:
            # Not HTTP, or not JSON: what answered is not a node's API.
            raise ClientError(0, f"malformed answer from {self.base_url}: {exc!r}") from None

    def _chain_path(self, tail: str) -> str:
        return f"/v1/chains/{urllib.parse.quote(self.chain_id, safe='')}/{tail}"

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/v1/status")
        return result

    def height(self) -> int:
        """The chain's latest committed height, as the node reports it."""
        for chain in self.status().get("chains", []):
            if chain.get("chain_id") == self.chain_id:
                return int(chain.get("height", 0))
        raise ClientError(0, f"node does not host chain {self.chain_id!r}")

    def submit(self, raw: bytes) -> str:
        """Submit one signed transaction; returns its id (hex)."""
        doc = self._request("POST", self._chain_path("txs"), {"tx": base64.b64encode(raw).decode()})
        return str(doc["id"])

    def submit_batch(self, raws: list[bytes]) -> list[dict[str, Any]]:
        body = {"txs": [base64.b64encode(r).decode() for r in raws]}
        results: list[dict[str, Any]] = self._request("POST", self._chain_path("txs"), body)[
            "results"
        ]
        return results

    def tx(self, tx_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", self._chain_path(f"txs/{tx_id}"))
        return result

    def wait(self, tx_id: str, timeout_s: float = 30.0, poll_s: float = 0.05) -> dict[str, Any]:
        """Poll until the transaction is committed, failed or rejected; ClientError on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            doc = self.tx(tx_id)
            if doc.get("status") in ("committed", "failed", "rejected"):
                return doc
            if time.monotonic() >= deadline:
                raise ClientError(0, f"transaction {tx_id} not committed after {timeout_s} s")
            time.sleep(poll_s)
            poll_s = min(poll_s * 1.5, 0.5)

    def block(self, height: int | str = "latest") -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", self._chain_path(f"blocks/{height}"))
        return result

    def state(self, contract: str, key: str, proof: bool = False) -> dict[str, Any]:
        quoted = urllib.parse.quote(key, safe="")
        path = self._chain_path(f"state/{urllib.parse.quote(contract, safe='')}/{quoted}")
        result: dict[str, Any] = self._request("GET", path + ("?proof=true" if proof else ""))
        return result
