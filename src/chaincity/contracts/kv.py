"""`kv`: a plain key-value store any member may write (put/get/delete)."""

from __future__ import annotations

from typing import Any

from chaincity.execution.context import Context, ContractError
from chaincity.execution.contract import Args, Contract, method

KEY_SIZE_MAX = 128
PUT_MANY_MAX = 1_000  # entries in one put_many (steps bound it too)


class KvContract(Contract):
    name = "kv"

    @method
    def put(self, ctx: Context, args: Args) -> None:
        key = args.text("key", size_max=KEY_SIZE_MAX)
        value = args.value("value")
        ctx.state.put(key, value)
        ctx.emit("put", {"key": key})

    @method
    def put_many(self, ctx: Context, args: Args) -> int:
        """Write every entry of the map ``items`` (key -> value); returns how many."""
        items = args.value("items")
        if not isinstance(items, dict) or not 0 < len(items) <= PUT_MANY_MAX:
            raise ContractError(f"argument 'items' must be a map of 1..{PUT_MANY_MAX} entries")
        for key, value in items.items():
            if len(key.encode()) > KEY_SIZE_MAX:
                raise ContractError(f"key longer than {KEY_SIZE_MAX} bytes")
            ctx.state.put(key, value)
        ctx.emit("put_many", {"count": len(items)})
        return len(items)

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
