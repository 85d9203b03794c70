"""Reading CPU time and peak memory from /proc text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chaincity.bench import procfs

# Fields 14 and 15 (utime, stime) are 250 and 50 ticks.
STAT = "1234 (python3 (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 9 0\n"
STATUS = "Name:\tpython3\nVmPeak:\t  300000 kB\nVmHWM:\t   81920 kB\nVmRSS:\t 80000 kB\n"


def test_parse_cpu_handles_parentheses_in_the_name() -> None:
    assert procfs.parse_cpu_s(STAT, 100) == pytest.approx(3.0)


def test_parse_cpu_refuses_garbage() -> None:
    for bad in ("", "no paren here", "1 (x) S 1 2"):
        with pytest.raises(ValueError):
            procfs.parse_cpu_s(bad, 100)


def test_parse_peak_rss() -> None:
    assert procfs.parse_peak_rss_bytes(STATUS) == 81920 * 1024
    with pytest.raises(ValueError):
        procfs.parse_peak_rss_bytes("Name:\tx\n")
    with pytest.raises(ValueError):
        procfs.parse_peak_rss_bytes("VmHWM:\t12 MB\n")
    assert procfs.parse_peak_rss_bytes(STATUS, "VmRSS") == 80000 * 1024


def test_sample_from_a_fake_proc_tree(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_text(STAT)
    (tmp_path / "42" / "status").write_text(STATUS)
    got = procfs.sample(42, proc_root=tmp_path)
    ticks = os.sysconf("SC_CLK_TCK")
    assert got == procfs.ProcSample(300 / ticks, 81920 * 1024, 80000 * 1024)
    assert procfs.sample(43, proc_root=tmp_path) is None


def test_sample_of_this_process_is_plausible() -> None:
    got = procfs.sample(os.getpid())
    assert got is not None
    assert got.cpu_s > 0
    assert got.peak_rss_bytes >= got.rss_bytes > got.anon_bytes > 1024 * 1024
