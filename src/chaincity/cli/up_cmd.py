"""`chaincity up`: a whole local network in one command.

Creates the network directory if it holds none, starts every node as a child
process (logs in each node's directory), prints where the APIs and member keys
are, shows a live status line, and stops every node on Ctrl-C. Run it again on
the same directory and the network resumes with its data.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.live import Live

from chaincity.genesis.errors import ConfigError
from chaincity.genesis.inspect import NetworkView, load_network
from chaincity.genesis.layout import GENESIS_FILE
from chaincity.genesis.network import InitOptions, check_options, create_network
from chaincity.node import local

STATUS_PERIOD_S = 1.0

console = Console()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _init_options(nodes: int, suite: str) -> InitOptions:
    orgs, per_org = local.org_layout(nodes)
    return InitOptions(orgs=orgs, validators_per_org=per_org, suite=suite)


def up(
    dir: Path = typer.Option(Path("chaincity-net"), "--dir", help="The network directory."),
    nodes: int = typer.Option(4, help="Validators, when creating a new network."),
    suite: str = typer.Option("ed25519-sha256", help="Crypto suite, when creating."),
    duration: float = typer.Option(0.0, help="Stop after this many seconds (0: run until Ctrl-C)."),
) -> None:
    """Start a local network (creating it first if DIR holds none)."""
    try:
        if not (dir / GENESIS_FILE).exists():
            opts = _init_options(nodes, suite)
            check_options(opts)
            create_network(dir, opts, _now_ms(), force=False)
            console.print(f"created a network of {nodes} validators in {dir}")
        view = load_network(dir, _now_ms())
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    procs = local.start_nodes(view)
    _print_endpoints(view)
    stopped = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    deadline = time.monotonic() + duration if duration > 0 else None
    try:
        _watch(
            view, procs, lambda: stopped or (deadline is not None and time.monotonic() > deadline)
        )
    finally:
        _stop_nodes(procs)


def _print_endpoints(view: NetworkView) -> None:
    console.print(
        f"network [bold]{view.genesis.network_id}[/] ({view.genesis.suite}), "
        f"{len(view.nodes)} nodes; logs in {view.root / 'nodes'}/<node>/node.log"
    )
    for n in view.nodes:
        console.print(f"  {n.config.name:<14} api http://{n.config.api.host}:{n.config.api.port}")
    for org in view.orgs:
        if org.dir is not None:
            console.print(
                f"  member key of {org.info.name}: {org.dir / 'member.key'} (+ member.cert)"
            )
    first = view.nodes[0].config
    key = view.orgs[0].dir / "member.key" if view.orgs[0].dir else "KEY"
    console.print(
        "try:  chaincity tx send --node http://"
        f"{first.api.host}:{first.api.port} --key {key} --contract notary --method record "
        '--args \'{"digest": "<64 hex>"}\' --wait'
    )
    console.print("Ctrl-C stops every node.")


def _status_line(view: NetworkView, procs: dict[str, subprocess.Popen[bytes]]) -> str:
    parts = []
    for n in view.nodes:
        name = n.config.name
        if procs[name].poll() is not None:
            parts.append(f"{name}: exited {procs[name].returncode}")
            continue
        doc = local.read_status(f"http://{n.config.api.host}:{n.config.api.port}", 0.5)
        if doc is None:
            parts.append(f"{name}: starting")
            continue
        try:
            chain = doc["chains"][0]
            parts.append(
                f"{name}: h={chain['height']} r={chain['round']} "
                f"peers={len(doc['peers']['connected'])}"
            )
        except (TypeError, ValueError, KeyError, IndexError):
            parts.append(f"{name}: starting")
    return " | ".join(parts)


def _watch(
    view: NetworkView,
    procs: dict[str, subprocess.Popen[bytes]],
    should_stop: object,
) -> None:
    assert callable(should_stop)
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        while not should_stop():
            live.update(_status_line(view, procs))
            if all(p.poll() is not None for p in procs.values()):
                console.print("every node has exited; see the node logs")
                return
            time.sleep(STATUS_PERIOD_S)


def _stop_nodes(procs: local.Procs) -> None:
    local.stop_nodes(procs)
    console.print("all nodes stopped")
