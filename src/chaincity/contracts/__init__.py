"""Built-in contracts."""

from __future__ import annotations

from chaincity.contracts.kv import KvContract
from chaincity.contracts.notary import NotaryContract
from chaincity.execution.contract import ContractRegistry


def builtin_registry() -> ContractRegistry:
    """The contracts every chain runs from genesis."""
    return ContractRegistry([KvContract(), NotaryContract()])


__all__ = ["KvContract", "NotaryContract", "builtin_registry"]
