"""A suite's optional hash constructor must give the suite's hash, byte for byte."""

from __future__ import annotations

import pytest

from chaincity.crypto import SUITE_NAMES, get_suite

INPUTS = [b"", b"\x00", b"abc", bytes(range(256)) * 3, b"x" * 65_537]


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_the_constructor_agrees_with_hash(name: str) -> None:
    suite = get_suite(name)
    ctor = suite.hash_constructor
    if ctor is None:
        assert name == "sm2-sm3"  # the only suite without one, by design
        return
    for data in INPUTS:
        assert ctor(data).digest() == suite.hash(data)
    assert len(ctor(b"").digest()) == suite.hash_size
