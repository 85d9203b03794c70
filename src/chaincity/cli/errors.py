"""How every command reports a refusal: one line on stderr and an exit code."""

from __future__ import annotations

from typing import NoReturn

import typer

from chaincity.genesis.errors import one_line

EXIT_FAILED = 1  # a file is bad, a certificate is rejected, a node refused
EXIT_USAGE = 2  # an option is wrong (as click does for unknown options)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``error: <message>`` on one line to stderr and exit with ``code``."""
    typer.echo(f"error: {one_line(' '.join(message.split()))}", err=True)
    raise typer.Exit(code)
