"""Entry point of the ``chaincity`` command; sub-commands live in sibling modules."""

from __future__ import annotations

import typer

from chaincity import __version__
from chaincity.cli import bench_cmd, client_cmd, ledger_cmd, network_cmd, node_cmd

app = typer.Typer(
    name="chaincity",
    help="chaincity: a consortium blockchain for cities and industry alliances.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def root() -> None:
    """chaincity: a consortium blockchain for cities and industry alliances."""


@app.command()
def version() -> None:
    """Print the installed version."""
    typer.echo(__version__)


network_cmd.register(app)
ledger_cmd.register(app)
client_cmd.register(app)
node_cmd.register(app)
bench_cmd.register(app)


def main() -> None:
    app()
