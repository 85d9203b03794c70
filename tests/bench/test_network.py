"""Free ports, readiness checks and the network layout of a bench run."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from chaincity.bench.network import (
    BenchError,
    chain_height,
    find_free_base_port,
    init_options,
    is_meshed,
    is_port_range_free,
    port_window,
)


def test_a_bound_port_makes_its_range_not_free() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not is_port_range_free(port, 1)
        assert not is_port_range_free(port, 3)


def test_found_range_is_free_and_in_bounds() -> None:
    base = find_free_base_port(8, random.Random(7))
    assert 20_000 <= base <= 60_000 - 8
    assert is_port_range_free(base, 8)


def test_ports_are_taken_below_the_ephemeral_range(tmp_path: Path) -> None:
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("32768\t60999\n")
    assert port_window(str(ranges)) == (20_000, 32_768)
    ranges.write_text("21000 60999\n")  # too little room below it: not avoided
    assert port_window(str(ranges)) == (20_000, 60_000)
    ranges.write_text("garbage")
    assert port_window(str(ranges)) == (20_000, 60_000)
    assert port_window(str(tmp_path / "absent")) == (20_000, 60_000)
    low, high = port_window()  # this machine's
    for seed in range(20):
        base = find_free_base_port(8, random.Random(seed))
        assert low <= base and base + 8 <= high


def test_no_free_range_is_a_bench_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("chaincity.bench.network.is_port_range_free", lambda b, c: False)
    with pytest.raises(BenchError):
        find_free_base_port(8, random.Random(1))


def test_layout_matches_up_and_keeps_port_ranges_apart() -> None:
    four = init_options(4, "ed25519-sha256", 30_000)
    assert (four.orgs, four.validators_per_org) == (2, 2)
    assert (four.base_port, four.api_base_port, four.host) == (30_000, 30_004, "127.0.0.1")
    three = init_options(3, "sm2-sm3", 30_000)
    assert (three.orgs, three.validators_per_org, three.suite) == (3, 1, "sm2-sm3")


def test_readiness_reads_status_defensively() -> None:
    status = {"peers": {"connected": ["a", "b", "c"]}, "chains": [{"height": 7}]}
    assert is_meshed(status, 3)
    assert not is_meshed(status, 4)
    assert not is_meshed(None, 0)
    assert not is_meshed({"peers": "junk"}, 1)
    assert chain_height(status) == 7
    assert chain_height({"chains": [{"height": "7"}]}) is None
    assert chain_height({"chains": []}) is None
    assert chain_height(None) is None
