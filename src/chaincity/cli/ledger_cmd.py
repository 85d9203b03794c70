"""`chaincity ledger ...`: inspect and re-verify a node's ledger."""

from __future__ import annotations

from pathlib import Path

import typer

from chaincity.crypto import CryptoError, get_suite
from chaincity.genesis.errors import ConfigError
from chaincity.genesis.model import load_genesis
from chaincity.genesis.node_config import load_node_config
from chaincity.ledger import Ledger, LedgerCorruption, LedgerError, check_ledger, list_chains
from chaincity.ledger.check import commit_cert_verifier, require_cert_present
from chaincity.ledger.ledger import open_store
from chaincity.state import StateCorruption, StorageError
from chaincity.types.validators import ValidatorSet

ledger_app = typer.Typer(help="Inspect and verify a node's ledger.", no_args_is_help=True)


@ledger_app.command("check")
def check(
    data: str = typer.Option(..., "--data", help="The node's data directory."),
    chain: str = typer.Option("", "--chain", help="Check only this chain (default: all)."),
    genesis: str = typer.Option(
        "",
        "--genesis",
        help="Verify certificate signatures against this genesis "
        "[default: the one named by DATA/../node.toml].",
    ),
) -> None:
    """Re-verify the hash chain, receipts, certificates and state roots of every chain."""
    validators = _trusted_validators(data, genesis)
    try:
        store = open_store(data, readonly=True)
    except (LedgerError, StorageError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        chains = list_chains(store)
    except StorageError as exc:
        store.close()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if chain:
        if chain not in chains:
            typer.echo(f"error: no chain {chain!r} in {data}", err=True)
            store.close()
            raise typer.Exit(2)
        chains = {chain: chains[chain]}
    try:
        failed = False
        for chain_id, suite_name in sorted(chains.items()):
            failed |= not _check_chain(store, chain_id, suite_name, validators)
    finally:
        store.close()
    raise typer.Exit(1 if failed else 0)


def _trusted_validators(data: str, genesis: str) -> ValidatorSet | None:
    path = Path(genesis) if genesis else _node_genesis(Path(data))
    if not genesis and not path.exists():
        typer.echo("note: no genesis found; certificates are checked for presence only")
        return None
    try:
        validators = load_genesis(str(path)).validators
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"certificates are checked against the validators of {path}")
    return validators


def _node_genesis(data: Path) -> Path:
    """The genesis named by the node config next to a node's data directory."""
    config = data.resolve().parent / "node.toml"
    try:
        return Path(load_node_config(config).genesis)
    except ConfigError:
        return data / "no-genesis"


def _check_chain(
    store: object, chain_id: str, suite_name: str, validators: ValidatorSet | None
) -> bool:
    try:
        ledger = Ledger(store, get_suite(suite_name), chain_id)  # type: ignore[arg-type]
        verifier = (
            require_cert_present if validators is None else commit_cert_verifier(ledger, validators)
        )
        report = check_ledger(ledger, verifier)
    except (CryptoError, LedgerError, LedgerCorruption, StateCorruption, StorageError) as exc:
        typer.echo(f"{chain_id}: FAILED: {exc}")
        return False
    summary = (
        f"{report.blocks} blocks, {report.receipts} receipts, {report.state_keys} state keys"
        f" in {report.state_pages} pages"
    )
    if report.ok:
        typer.echo(f"{chain_id}: ok ({summary}, height {ledger.height})")
        return True
    typer.echo(f"{chain_id}: FAILED ({summary})")
    for error in report.errors:
        typer.echo(f"  {error}")
    return False


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.add_typer(ledger_app, name="ledger")
