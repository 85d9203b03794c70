"""`chaincity tx send`, `chaincity query`, `chaincity status`: talk to a running node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from chaincity.api.render import value_from_json
from chaincity.cli.errors import fail
from chaincity.client import Client, ClientError, Signer
from chaincity.crypto import CryptoError
from chaincity.types.identity import IdentityError

DEFAULT_NODE = "http://127.0.0.1:8700"
EXPIRY_MARGIN = 500

console = Console()
tx_app = typer.Typer(help="Build, sign and submit transactions.", no_args_is_help=True)


def _print_json(doc: Any) -> None:
    console.print_json(json.dumps(doc))


@tx_app.command("send")
def tx_send(
    contract: str = typer.Option(..., help="Contract name, e.g. notary or kv."),
    method: str = typer.Option(..., help="Method of the contract."),
    args: str = typer.Option("{}", help="Arguments as a JSON object."),
    key: Path = typer.Option(..., help="The member's private key file."),
    cert: Path | None = typer.Option(None, help="Certificate file [default: KEY with .cert]."),
    node: str = typer.Option(DEFAULT_NODE, help="A node's API address."),
    chain: str = typer.Option("main", help="Chain id."),
    wait: bool = typer.Option(False, help="Wait until the transaction commits."),
    timeout: float = typer.Option(30.0, help="Seconds to wait with --wait."),
) -> None:
    """Sign a transaction with KEY and submit it to NODE."""
    try:
        parsed = value_from_json(json.loads(args))
    except ValueError as exc:
        fail(f"--args: {exc}", 2)
    try:
        signer = Signer.from_files(key, cert or key.with_suffix(".cert"), chain)
    except (CryptoError, IdentityError, ValueError) as exc:
        fail(str(exc), 2)
    client = Client(node, chain)
    try:
        expiry = client.height() + EXPIRY_MARGIN
        tx_id = client.submit(signer.build(contract, method, parsed, expiry_height=expiry))
        if not wait:
            _print_json({"id": tx_id, "status": "accepted"})
            return
        doc = client.wait(tx_id, timeout)
    except ClientError as exc:
        fail(str(exc))
    _print_json(doc)
    if doc.get("status") != "committed":
        raise typer.Exit(1)


def query(
    contract: str = typer.Option(..., help="Contract name."),
    key: str = typer.Option(..., help="State key within the contract."),
    node: str = typer.Option(DEFAULT_NODE, help="A node's API address."),
    chain: str = typer.Option("main", help="Chain id."),
    proof: bool = typer.Option(False, help="Include a proof bundle."),
    out: Path | None = typer.Option(None, help="Write the answer (with its proof) to a file."),
) -> None:
    """Read a contract's state key, optionally with a proof that `chaincity verify` checks."""
    try:
        doc = Client(node, chain).state(contract, key, proof)
    except ClientError as exc:
        fail(str(exc))
    if out is not None:
        out.write_text(json.dumps(doc, indent=2) + "\n")
        typer.echo(f"wrote {out}")
        return
    _print_json(doc)


def status(node: str = typer.Option(DEFAULT_NODE, help="A node's API address.")) -> None:
    """Show a node's status: chains, heights, rounds, peers, mempool."""
    try:
        _print_json(Client(node).status())
    except ClientError as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:
    app.add_typer(tx_app, name="tx")
    app.command("query")(query)
    app.command("status")(status)
