"""A plain-dict state view, the model the executor is tested against."""

from __future__ import annotations

from typing import Any

import pytest


class DictNamespace:
    def __init__(self, view: DictView, contract: str) -> None:
        self._view = view
        self._prefix = contract.encode() + b"/"

    def get(self, key: bytes) -> bytes | None:
        return self._view.data.get(self._prefix + key)

    def put(self, key: bytes, value: bytes) -> None:
        self._view.log.append((self._prefix + key, self._view.data.get(self._prefix + key)))
        self._view.data[self._prefix + key] = value

    def delete(self, key: bytes) -> None:
        self._view.log.append((self._prefix + key, self._view.data.get(self._prefix + key)))
        self._view.data.pop(self._prefix + key, None)


class DictView:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.log: list[tuple[bytes, bytes | None]] = []

    def namespace(self, contract: str) -> DictNamespace:
        return DictNamespace(self, contract)

    def checkpoint(self) -> Any:
        return len(self.log)

    def revert(self, checkpoint: Any) -> None:
        while len(self.log) > checkpoint:
            key, old = self.log.pop()
            if old is None:
                self.data.pop(key, None)
            else:
                self.data[key] = old


@pytest.fixture
def view() -> DictView:
    return DictView()
