"""`kv`: a plain key-value store any member may write (put/get/delete)."""

from __future__ import annotations

from typing import Any

from chaincity.execution.context import Context, ContractError
from chaincity.execution.contract import Args, Contract, method

KEY_SIZE_MAX = 128


class KvContract(Contract):
    name = "kv"

    @method
    def put(self, ctx: Context, args: Args) -> None:
        key = args.text("key", size_max=KEY_SIZE_MAX)
        value = args.value("value")
        ctx.state.put(key, value)
        ctx.emit("put", {"key": key})

    @method
    def get(self, ctx: Context, args: Args) -> Any:
        return ctx.state.get(args.text("key", size_max=KEY_SIZE_MAX))

    @method
    def delete(self, ctx: Context, args: Args) -> None:
        key = args.text("key", size_max=KEY_SIZE_MAX)
        if not ctx.state.has(key):
            raise ContractError(f"no such key {key!r}")
        ctx.state.delete(key)
        ctx.emit("delete", {"key": key})
