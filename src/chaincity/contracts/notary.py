"""`notary`: record a document's digest once, with metadata, by any member.

The record is stored under the digest's lower-case hex text, so it can be read
and proven at ``/state/notary/<hex digest>``. A digest can be recorded only
once: the first record stands, and a later attempt fails with a reason.
"""

from __future__ import annotations

from typing import Any

from chaincity.execution.context import Context, ContractError
from chaincity.execution.contract import Args, Contract, method

DIGEST_HEX_SIZE_MIN = 32  # 128-bit digests and up
DIGEST_HEX_SIZE_MAX = 128  # up to 512-bit digests
_HEX = frozenset("0123456789abcdef")


def _digest_key(args: Args) -> str:
    digest = args.text("digest", size_max=DIGEST_HEX_SIZE_MAX).lower()
    if len(digest) < DIGEST_HEX_SIZE_MIN or len(digest) % 2 or not set(digest) <= _HEX:
        raise ContractError("digest must be 32..128 hex characters")
    return digest


class NotaryContract(Contract):
    name = "notary"

    @method
    def record(self, ctx: Context, args: Args) -> dict[str, Any]:
        digest = _digest_key(args)
        metadata = args.value("metadata", required=False)
        if ctx.state.has(digest):
            raise ContractError(f"digest {digest} is already recorded")
        record = {
            "digest": digest,
            "metadata": metadata,
            "org": ctx.sender.org,
            "subject": ctx.sender.subject,
            "height": ctx.height,
            "time_ms": ctx.block_time_ms,
            "tx_id": ctx.tx_id.hex(),
        }
        ctx.state.put(digest, record)
        ctx.emit("recorded", {"digest": digest, "org": ctx.sender.org})
        return record

    @method
    def lookup(self, ctx: Context, args: Args) -> Any:
        return ctx.state.get(_digest_key(args))
