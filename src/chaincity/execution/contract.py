"""Contracts: Python classes whose marked methods run against a Context.

A method receives the context and its arguments as a map of canonical plain
values, validated with :class:`Args`. It returns a plain value (recorded in the
receipt) or raises ContractError with its own message. Anything else it raises
fails the transaction with only the exception's class name in the receipt:
interpreter messages differ between Python versions, receipts must not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from chaincity.execution.context import Context, ContractError

MethodFn = Callable[[Any, Context, "Args"], Any]
F = TypeVar("F", bound=MethodFn)

_METHOD_MARK = "__chaincity_method__"


def method(fn: F) -> F:
    """Mark a contract method as callable by transactions."""
    setattr(fn, _METHOD_MARK, True)
    return fn


class Contract:
    """Base of every contract; subclasses set ``name`` and mark methods."""

    name: ClassVar[str]
    _methods: ClassVar[Mapping[str, MethodFn]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, MethodFn] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if callable(value) and getattr(value, _METHOD_MARK, False):
                    found[attr] = value
        cls._methods = found

    @classmethod
    def method_names(cls) -> tuple[str, ...]:
        return tuple(sorted(cls._methods))

    def call(self, method_name: str, ctx: Context, args: Args) -> Any:
        fn = self._methods.get(method_name)
        if fn is None:
            raise ContractError(f"contract {self.name!r} has no method {method_name!r}")
        return fn(self, ctx, args)


class Args:
    """A transaction's arguments with typed, bounded accessors."""

    __slots__ = ("_values",)

    def __init__(self, values: Any) -> None:
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise ContractError("arguments must be a map of names to values")
        self._values: dict[str, Any] = values

    def _get(self, name: str, required: bool) -> Any:
        if name not in self._values:
            if required:
                raise ContractError(f"missing argument {name!r}")
            return None
        return self._values[name]

    def text(self, name: str, *, size_max: int = 256, required: bool = True) -> str:
        value = self._get(name, required)
        if value is None and not required:
            return ""
        if not isinstance(value, str):
            raise ContractError(f"argument {name!r} must be text")
        if len(value.encode()) > size_max:
            raise ContractError(f"argument {name!r} longer than {size_max} bytes")
        return value

    def integer(self, name: str, *, low: int = 0, high: int = 2**63 - 1) -> int:
        value = self._get(name, True)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ContractError(f"argument {name!r} must be an integer")
        if not low <= value <= high:
            raise ContractError(f"argument {name!r} must be in [{low}, {high}]")
        return value

    def value(self, name: str, *, required: bool = True) -> Any:
        """Any canonical plain value (already checked by the codec)."""
        return self._get(name, required)


class ContractRegistry:
    """The contracts a chain runs, by name."""

    def __init__(self, contracts: list[Contract] | None = None) -> None:
        self._contracts: dict[str, Contract] = {}
        for contract in contracts or []:
            self.add(contract)

    def add(self, contract: Contract) -> None:
        if contract.name in self._contracts:
            raise ValueError(f"contract {contract.name!r} registered twice")
        self._contracts[contract.name] = contract

    def get(self, name: str) -> Contract | None:
        return self._contracts.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._contracts))
