"""Reading CPU time and peak memory from /proc text."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_sample_adds_the_live_child_processes(tmp_path: Path) -> None:
    for pid in ("42", "77"):
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "stat").write_text(STAT)
        (tmp_path / pid / "status").write_text(STATUS)
    for tid, listed in (("42", "77 "), ("43", "")):  # one thread lists a child, one none
        (tmp_path / "42" / "task" / tid).mkdir(parents=True)
        (tmp_path / "42" / "task" / tid / "children").write_text(listed)
    (tmp_path / "42" / "task" / "44").mkdir()  # a child listed but gone by now
    (tmp_path / "42" / "task" / "44" / "children").write_text("99")
    got = procfs.sample(42, proc_root=tmp_path)
    ticks = os.sysconf("SC_CLK_TCK")
    assert got == procfs.ProcSample(600 / ticks, 2 * 81920 * 1024, 2 * 80000 * 1024)
    assert sorted(procfs.children(42, proc_root=tmp_path)) == [77, 99]


def test_children_of_this_process_include_one_it_started() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in procfs.children(os.getpid())
    finally:
        child.kill()
        child.wait(30)
