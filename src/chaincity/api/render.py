"""JSON renderings of chain objects, shared by the API and the command line.

Byte strings inside free-form values render as ``{"$bytes": "<base64>"}`` so
that text and bytes never look alike; hashes and ids render as hex.
"""

from __future__ import annotations

import base64
from typing import Any

from chaincity.codec import CodecError, decode_value
from chaincity.types.block import RECEIPT_OK, BlockHeader, Receipt


def value_to_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, list | tuple):
        return [value_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: value_to_json(v) for k, v in value.items()}
    return value


def value_from_json(value: Any) -> Any:
    """Inverse of value_to_json; raises ValueError for floats and bad $bytes."""
    if isinstance(value, float):
        raise ValueError("floats are not allowed; use integers or text")
    if isinstance(value, list):
        return [value_from_json(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            raw = value["$bytes"]
            if not isinstance(raw, str):
                raise ValueError("$bytes must be base64 text")
            try:
                return base64.b64decode(raw, validate=True)
            except ValueError:
                raise ValueError("$bytes must be base64 text") from None
        return {k: value_from_json(v) for k, v in value.items()}
    return value


def encoded_value_to_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return value_to_json(decode_value(raw))
    except CodecError:
        return {"$bytes": base64.b64encode(raw).decode()}


def receipt_to_json(receipt: Receipt) -> dict[str, Any]:
    return {
        "tx_id": receipt.tx_id.hex(),
        "height": receipt.height,
        "index": receipt.index,
        "status": "ok" if receipt.status == RECEIPT_OK else "failed",
        "error": receipt.error,
        "result": encoded_value_to_json(receipt.result),
        "steps": receipt.steps,
        "events": [
            {"contract": e.contract, "name": e.name, "data": encoded_value_to_json(e.data)}
            for e in receipt.events
        ],
    }


def header_to_json(header: BlockHeader) -> dict[str, Any]:
    return {
        "chain_id": header.chain_id,
        "epoch": header.epoch,
        "height": header.height,
        "round": header.round,
        "parent_hash": header.parent_hash.hex(),
        "payload_hash": header.payload_hash.hex(),
        "exec_height": header.exec_height,
        "state_root": header.state_root.hex(),
        "receipts_root": header.receipts_root.hex(),
        "proposer": header.proposer,
        "timestamp_ms": header.timestamp_ms,
    }
