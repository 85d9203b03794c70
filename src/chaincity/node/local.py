"""A local network of node processes on one machine, as `chaincity up` and
`chaincity bench` run it: the organization layout, starting every node as its
own `chaincity node` process, reading a node's status, stopping them all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

from chaincity.genesis.inspect import NetworkView
from chaincity.genesis.layout import node_dir

STOP_GRACE_S = 10.0
STATUS_SIZE_MAX = 1 << 20

Procs = dict[str, subprocess.Popen[bytes]]


def org_layout(nodes: int) -> tuple[int, int]:
    """(organizations, validators per organization): two organizations when the
    count is even and above 2, else one per validator."""
    return (2, nodes // 2) if nodes % 2 == 0 and nodes > 2 else (nodes, 1)


def start_nodes(view: NetworkView) -> Procs:
    """Every node of ``view`` as a process of its own, logging to its node.log, in a
    session of its own (Ctrl-C reaches the caller, which stops them in order).
    If one cannot start, those already started are stopped."""
    loop = os.environ.get("CHAINCITY_LOOP", "uvloop")
    procs: Procs = {}
    try:
        for n in view.nodes:
            log_path = node_dir(view.root, n.config.name) / "node.log"
            cmd = [sys.executable, "-m", "chaincity", "node", "--config", str(n.config_path)]
            with open(log_path, "ab") as log:
                procs[n.config.name] = subprocess.Popen(
                    [*cmd, "--loop", loop],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
    except BaseException:
        stop_nodes(procs)
        raise
    return procs


def stop_nodes(procs: Procs) -> None:
    """SIGTERM every node, then SIGKILL what still runs after the grace period."""
    for p in procs.values():
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs.values():
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def read_status(api_url: str, timeout_s: float) -> dict[str, Any] | None:
    """A node's ``/v1/status`` document, or None if it does not answer with one."""
    try:
        with urllib.request.urlopen(f"{api_url}/v1/status", timeout=timeout_s) as resp:
            doc = json.loads(resp.read(STATUS_SIZE_MAX))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
