"""`chaincity node` (one node process), `chaincity up` (a local network), `chaincity verify`."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import signal
from pathlib import Path
from typing import Any

import typer

from chaincity.api.render import encoded_value_to_json
from chaincity.cli.errors import fail
from chaincity.crypto import CryptoError
from chaincity.genesis.errors import ConfigError
from chaincity.genesis.model import load_genesis

BUNDLE_FILE_SIZE_MAX = 8 * 1024 * 1024


def node(
    config: Path = typer.Option(..., help="The node's config file (node.toml)."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
    loop: str = typer.Option("uvloop", help="Event loop: uvloop (when installed) or asyncio."),
) -> None:
    """Run one node until it is stopped (SIGINT or SIGTERM)."""
    from chaincity.node.node import Node

    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        instance = Node.from_config(config)
    except (ConfigError, CryptoError, ValueError, OSError) as exc:
        fail(str(exc), 2)
    if loop == "uvloop":
        _install_uvloop()
    asyncio.run(_serve(instance))


async def _serve(instance: Any) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await instance.start()
    except OSError as exc:
        await instance.stop()
        fail(f"cannot start node {instance.name}: {exc}")
    await stop.wait()
    logging.getLogger("chaincity.node").info("stopping")
    await instance.stop()


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def verify(
    bundle_file: Path = typer.Argument(
        ..., help="A proof bundle (from `chaincity query --proof`)."
    ),
    genesis: Path | None = typer.Option(
        None, help="Trust this genesis's validator set (recommended)."
    ),
) -> None:
    """Check a proof bundle offline: state proof, headers, commit certificate."""
    from chaincity.proofs import BundleError, decode_bundle, validators_fingerprint, verify_bundle

    try:
        raw = bundle_file.read_bytes()[: BUNDLE_FILE_SIZE_MAX + 1]
    except OSError as exc:
        fail(f"{bundle_file}: cannot read ({exc.strerror})", 2)
    try:
        bundle = decode_bundle(_bundle_bytes(raw, bundle_file))
        if genesis is not None:
            trusted = load_genesis(str(genesis)).validators
            source = f"genesis {genesis}"
        else:
            trusted = bundle.validators
            source = "the bundle itself (pass --genesis to pin it)"
        record = verify_bundle(bundle, trusted)
    except (BundleError, ConfigError) as exc:
        fail(f"{bundle_file}: {exc}")
    fingerprint = validators_fingerprint(bundle.suite, trusted)
    typer.echo(f"VALID: {bundle_file}")
    key = record.key.decode(errors="replace")
    typer.echo(f"  chain {record.chain_id}, contract {record.contract}, key {key}")
    value = "absent" if record.value is None else json.dumps(encoded_value_to_json(record.value))
    typer.echo(f"  value {value}")
    typer.echo(
        f"  as of height {record.state_height}, certified at height {record.certified_height}"
    )
    typer.echo(
        f"  validator set epoch {record.epoch}, fingerprint {fingerprint}, trusted from {source}"
    )


def _bundle_bytes(raw: bytes, path: Path) -> bytes:
    """Accept the JSON answer of `query --proof` (or its proof part) or raw bytes."""
    from chaincity.proofs import BUNDLE_TYPE, BundleError

    if len(raw) > BUNDLE_FILE_SIZE_MAX:
        raise BundleError(f"larger than {BUNDLE_FILE_SIZE_MAX} bytes")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw
    if isinstance(doc, dict) and isinstance(doc.get("proof"), dict):
        doc = doc["proof"]
    if not isinstance(doc, dict) or doc.get("type") != BUNDLE_TYPE:
        raise BundleError("not a chaincity proof bundle")
    if "bundle" not in doc:
        raise BundleError(str(doc.get("error", "the answer holds no bundle")))
    try:
        return base64.b64decode(str(doc["bundle"]), validate=True)
    except ValueError:
        raise BundleError("bundle is not valid base64") from None


def register(app: typer.Typer) -> None:
    app.command("node")(node)
    app.command("verify")(verify)
    from chaincity.cli.up_cmd import up

    app.command("up")(up)
