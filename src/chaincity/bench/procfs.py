"""CPU time and peak memory of the node processes, read from Linux /proc."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

PROC_FILE_SIZE_MAX = 64 * 1024
CHILD_TASKS_MAX = 1024  # threads of a node, and its child processes, looked at
# /proc/<pid>/stat fields after the ")" that closes the command name; utime
# and stime are fields 14 and 15 of the whole line (1-based).
_UTIME_AFTER_COMM = 11
_STIME_AFTER_COMM = 12


@dataclass(frozen=True, slots=True)
class ProcSample:
    cpu_s: float
    peak_rss_bytes: int
    rss_bytes: int = 0  # resident now
    # Of which anonymous (the heap; the rest is mostly the ledger's memory-mapped file,
    # which the kernel can drop and read again): 0 where the kernel does not say.
    anon_bytes: int = 0


def parse_cpu_s(stat_text: str, ticks_per_s: int) -> float:
    """User + system CPU seconds from the text of /proc/<pid>/stat."""
    # The command name may hold spaces and parentheses; the last ")" ends it.
    close = stat_text.rfind(")")
    if close < 0:
        raise ValueError("not a /proc stat line")
    fields = stat_text[close + 1 :].split()
    if len(fields) <= _STIME_AFTER_COMM or ticks_per_s <= 0:
        raise ValueError("not a /proc stat line")
    ticks = int(fields[_UTIME_AFTER_COMM]) + int(fields[_STIME_AFTER_COMM])
    return ticks / ticks_per_s


def parse_peak_rss_bytes(status_text: str, field: str = "VmHWM") -> int:
    """VmHWM (peak resident set), or another kB field such as VmRSS, from the text
    of /proc/<pid>/status, in bytes."""
    for line in status_text.splitlines():
        if line.startswith(f"{field}:"):
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB" and parts[1].isdigit():
                return int(parts[1]) * 1024
            raise ValueError(f"unexpected {field} line: {line!r}")
    raise ValueError(f"no {field} line")


def sample(pid: int, proc_root: Path = Path("/proc")) -> ProcSample | None:
    """CPU seconds so far and peak memory of ``pid`` and of its live child processes (a
    node's signature workers); None when the process itself cannot be read."""
    own = _sample_one(proc_root / str(pid))
    if own is None:
        return None
    cpu_s, peak, rss, anon = own.cpu_s, own.peak_rss_bytes, own.rss_bytes, own.anon_bytes
    for child in children(pid, proc_root):
        more = _sample_one(proc_root / str(child))
        if more is not None:  # it may have exited since it was listed
            cpu_s += more.cpu_s
            peak += more.peak_rss_bytes
            rss += more.rss_bytes
            anon += more.anon_bytes
    return ProcSample(cpu_s, peak, rss, anon)


def children(pid: int, proc_root: Path = Path("/proc")) -> list[int]:
    """The live child processes of ``pid`` (empty where the kernel does not list them)."""
    found: list[int] = []
    try:
        tasks = list((proc_root / str(pid) / "task").iterdir())[:CHILD_TASKS_MAX]
    except OSError:
        return found
    for task in tasks:
        try:
            text = (task / "children").read_bytes()[:PROC_FILE_SIZE_MAX].decode("ascii")
        except (OSError, UnicodeDecodeError):
            continue
        found += [int(p) for p in text.split() if p.isascii() and p.isdigit()]
    return found[:CHILD_TASKS_MAX]


def _sample_one(base: Path) -> ProcSample | None:
    try:
        stat = (base / "stat").read_bytes()[:PROC_FILE_SIZE_MAX].decode("ascii", "replace")
        status = (base / "status").read_bytes()[:PROC_FILE_SIZE_MAX].decode("ascii", "replace")
        ticks = os.sysconf("SC_CLK_TCK")
        return ProcSample(
            parse_cpu_s(stat, ticks),
            parse_peak_rss_bytes(status),
            parse_peak_rss_bytes(status, "VmRSS"),
            parse_peak_rss_bytes(status, "RssAnon") if "RssAnon:" in status else 0,
        )
    except (OSError, ValueError):
        return None


def cpu_model() -> str:
    """The processor's model name, for reports of measured figures."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
