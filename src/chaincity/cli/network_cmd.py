"""`chaincity init`, `chaincity network show`, `chaincity keys ...`, `chaincity cert ...`.

These commands only touch files; they read the clock (the one place that
decides what "now" is for certificates and the genesis time) and print. The
work itself lives in ``chaincity.genesis`` and ``chaincity.types.identity``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from chaincity.cli.errors import EXIT_FAILED, EXIT_USAGE, fail
from chaincity.crypto import DEFAULT_SUITE, SUITE_NAMES
from chaincity.crypto.keyfile import (
    KEY_FILE_SIZE_MAX,
    dump_key_pair,
    generate_key_pair,
    parse_key_pair,
)
from chaincity.crypto.suite import CryptoError
from chaincity.crypto.x509 import TransportCertError
from chaincity.genesis import layout
from chaincity.genesis.errors import ConfigError
from chaincity.genesis.files import read_bounded, write_public_file, write_secret_file
from chaincity.genesis.inspect import NetworkView, load_cert_file, load_key_file, load_network
from chaincity.genesis.issue import issue_member_cert
from chaincity.genesis.model import load_genesis
from chaincity.genesis.network import InitOptions, check_options, create_network, load_suite
from chaincity.types.identity import IdentityError, MemberCert, dump_cert, verify_member_cert

REVOKED_MAX = 1024
# Wide enough for a full validator key in the nodes table.
SHOW_WIDTH_MIN = 160

keys_app = typer.Typer(help="Create and inspect private key files.", no_args_is_help=True)
cert_app = typer.Typer(help="Issue and verify member certificates.", no_args_is_help=True)
network_app = typer.Typer(help="Inspect a network directory.", no_args_is_help=True)


@contextmanager
def reported(code: int = EXIT_FAILED) -> Iterator[None]:
    """Turn the errors bad input raises into one line and an exit code."""
    try:
        yield
    except (ConfigError, CryptoError, TransportCertError) as exc:
        fail(str(exc), code)
    except IdentityError as exc:
        fail(exc.reason, code)
    except OSError as exc:  # the disk, not the input: still one line, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        fail(f"{where}{exc.strerror or exc}", code)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- init -----------------------------------------------------------------


def init(
    dir: Path = typer.Option(..., "--dir", help="Directory to create the network in."),
    orgs: int = typer.Option(2, help="Number of organizations."),
    validators_per_org: int = typer.Option(2, help="Validator nodes per organization."),
    suite: str = typer.Option(DEFAULT_SUITE, help=f"Crypto suite: {' | '.join(SUITE_NAMES)}."),
    network_id: str = typer.Option("main", help="Network id (also the main chain's id)."),
    base_port: int = typer.Option(7700, help="First peer-to-peer port; node i uses base+i."),
    api_base_port: int = typer.Option(8700, help="First API port; node i uses base+i."),
    host: str = typer.Option("127.0.0.1", help="Address the nodes listen on and dial."),
    cert_days: int = typer.Option(365, help="Lifetime of member certificates, in days."),
    force: bool = typer.Option(False, "--force", help="Replace an existing network directory."),
) -> None:
    """Create a ready network: genesis, node configs, keys and certificates."""
    opts = InitOptions(
        orgs=orgs,
        validators_per_org=validators_per_org,
        suite=suite,
        network_id=network_id,
        base_port=base_port,
        api_base_port=api_base_port,
        host=host,
        cert_days=cert_days,
    )
    with reported(EXIT_USAGE):
        check_options(opts)
        load_suite(suite)
    with reported():
        view = create_network(dir, opts, now_ms(), force)
    g = view.genesis
    typer.echo(
        f"created network {g.network_id} ({g.suite}) in {dir}: {len(g.orgs)} organizations, "
        f"{g.validators.size} validators"
    )
    typer.echo(f"genesis hash {view.genesis_hash.hex()}")
    typer.echo(f"next: chaincity network show --dir {dir}")


# -- network show -----------------------------------------------------------


@network_app.command("show")
def network_show(
    dir: Path = typer.Option(..., "--dir", help="The network directory."),
) -> None:
    """Print the organizations, nodes, ports, validator keys and key files."""
    with reported():
        view = load_network(dir, now_ms())
    console = Console(width=max(Console().width, SHOW_WIDTH_MIN), highlight=False)
    g = view.genesis
    vset = g.validators
    console.print(Text.assemble(("network ", "bold"), g.network_id, ("   suite ", "bold"), g.suite))
    console.print(f"[bold]genesis hash[/bold] {view.genesis_hash.hex()}")
    console.print(
        f"[bold]genesis time[/bold] {iso(g.genesis_time_ms)}   [bold]validators[/bold] "
        f"{vset.size} (tolerates {vset.max_faulty} faulty, quorum {vset.quorum})"
    )
    console.print(_orgs_table(view))
    console.print(_nodes_table(view))
    p = g.params
    console.print(
        f"[bold]params[/bold] block_txs_max={p.block_txs_max} "
        f"block_size_bytes_max={p.block_size_bytes_max} tx_size_bytes_max={p.tx_size_bytes_max} "
        f"round_timeout_ms={p.round_timeout_ms} round_timeout_max_ms={p.round_timeout_max_ms} "
        f"tx_expiry_blocks_max={p.tx_expiry_blocks_max} "
        f"state_versions_kept={p.state_versions_kept}"
    )


def _rel(view: NetworkView, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(view.root.resolve()))
    except ValueError:
        return str(path)


def _orgs_table(view: NetworkView) -> Table:
    table = Table(title="Organizations", title_justify="left")
    for column in ("org", "member CA key", "certificates", "key files"):
        table.add_column(column, overflow="fold")
    for org in view.orgs:
        certs = "\n".join(
            f"{_rel(view, c.path)}: {c.cert.body.subject} "
            f"({','.join(c.cert.body.roles)}) serial {c.cert.body.serial} {c.status}"
            for c in org.certs
        )
        keys = "\n".join(_rel(view, k) for k in org.key_files)
        absent = "(not in this directory)"
        table.add_row(
            Text(org.info.name),
            org.info.ca_public_key.hex()[:16] + "…",
            Text(certs or absent),
            Text(keys or absent),
        )
    return table


def _nodes_table(view: NetworkView) -> Table:
    table = Table(title="Nodes", title_justify="left")
    for column in ("node", "org", "role", "p2p", "api", "consensus key", "directory"):
        table.add_column(column, overflow="fold")
    local = {n.config.name for n in view.nodes}
    for node in view.nodes:
        c = node.config
        table.add_row(
            c.name,
            c.org,
            "validator" if node.is_validator else "observer",
            f"{c.p2p.host}:{c.p2p.port}",
            f"{c.api.host}:{c.api.port}",
            node.consensus_public_key.hex(),
            Text(_rel(view, node.config_path.parent)),
        )
    for v in view.genesis.validators.validators:
        if v.name not in local:
            table.add_row(v.name, v.org, "validator", "-", "-", v.public_key.hex(), "(remote)")
    return table


# -- keys ---------------------------------------------------------------------


@keys_app.command("new")
def keys_new(
    out: Path = typer.Option(..., "--out", help="Key file to write (mode 0600)."),
    suite: str = typer.Option(DEFAULT_SUITE, help=f"Crypto suite: {' | '.join(SUITE_NAMES)}."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Generate a private key and print its public key."""
    with reported(EXIT_USAGE):
        crypto_suite = load_suite(suite)
    if out.exists() and not force:
        fail(f"{out}: already exists (use --force to replace it)")
    pair = generate_key_pair(crypto_suite)
    try:
        write_secret_file(out, dump_key_pair(pair))
    except OSError as exc:
        fail(f"{out}: cannot write ({exc.strerror})")
    typer.echo(f"{out}: {crypto_suite.name} public key {pair.public_key.hex()}")


@keys_app.command("show")
def keys_show(path: Path = typer.Argument(..., help="A key file.")) -> None:
    """Print a key file's suite and public key (never the private key)."""
    with reported():
        data = read_bounded(path, KEY_FILE_SIZE_MAX)
        try:
            pair = parse_key_pair(data, str(path))
        except ImportError as exc:
            raise ConfigError(f"{path}: suite not available ({exc})") from None
    typer.echo(f"suite: {pair.suite.name}")
    typer.echo(f"public key: {pair.public_key.hex()}")


# -- cert -----------------------------------------------------------------------


@cert_app.command("issue")
def cert_issue(
    dir: Path = typer.Option(..., "--dir", help="The network directory (holds orgs/ORG/ca.key)."),
    org: str = typer.Option(..., help="Issuing organization."),
    subject: str = typer.Option(..., help="Who the certificate is for."),
    role: list[str] = typer.Option(["member"], help="A role; repeat for several."),
    key: Path | None = typer.Option(None, help="The subject's key file (its public key is used)."),
    public_key: str | None = typer.Option(None, help="The subject's public key, in hex."),
    days: int = typer.Option(365, help="Lifetime in days."),
    out: Path = typer.Option(..., "--out", help="Certificate file to write."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Issue a member certificate signed by an organization's CA key."""
    if (key is None) == (public_key is None):
        fail("give exactly one of --key and --public-key", EXIT_USAGE)
    if out.exists() and not force:
        fail(f"{out}: already exists (use --force to replace it)")
    with reported():
        genesis = load_genesis(str(layout.genesis_path(dir)))
        if key is not None:
            subject_key = load_key_file(key, genesis.suite).public_key
        else:
            subject_key = _hex_option(public_key or "", "--public-key")
        cert, genesis = issue_member_cert(
            dir, org, subject, tuple(role), subject_key, now_ms(), days
        )
        write_public_file(out, dump_cert(cert, genesis.suite))
    b = cert.body
    typer.echo(
        f"{out}: {b.subject} of {b.org}, roles {','.join(b.roles)}, serial {b.serial}, "
        f"valid until {iso(b.not_after_ms)}"
    )


def _hex_option(value: str, flag: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        fail(f"{flag}: not hex", EXIT_USAGE)


@cert_app.command("verify")
def cert_verify(
    path: Path = typer.Argument(..., help="The certificate file."),
    dir: Path = typer.Option(..., "--dir", help="The network directory (holds genesis.json)."),
    role: str | None = typer.Option(None, help="Require this role."),
    revoked: list[str] = typer.Option([], help="A revoked ORG:SERIAL; repeat for several."),
    at_ms: int | None = typer.Option(None, help="Check at this time (ms since epoch)."),
) -> None:
    """Check a certificate against the network's organization CAs."""
    revoked_pairs = _parse_revoked(revoked)
    with reported():
        genesis = load_genesis(str(layout.genesis_path(dir)))
        cert = load_cert_file(path, genesis.suite)
        try:
            verify_member_cert(
                load_suite(genesis.suite),
                cert,
                genesis.ca_keys(),
                now_ms() if at_ms is None else at_ms,
                revoked_pairs,
                role,
                genesis.network_id,
            )
        except IdentityError as exc:
            raise ConfigError(f"{path}: rejected: {exc.reason}") from None
    _print_cert(path, cert)


def _print_cert(path: Path, cert: MemberCert) -> None:
    b = cert.body
    typer.echo(
        f"{path}: ok: {b.subject} of {b.org}, roles {','.join(b.roles)}, serial {b.serial}, "
        f"valid {iso(b.not_before_ms)} to {iso(b.not_after_ms)}"
    )


def _parse_revoked(values: list[str]) -> frozenset[tuple[str, int]]:
    if len(values) > REVOKED_MAX:
        fail(f"--revoked: at most {REVOKED_MAX} entries", EXIT_USAGE)
    pairs = set()
    for value in values:
        org, _, serial = value.rpartition(":")
        if not org or not (serial.isascii() and serial.isdigit()) or len(serial) > 19:
            fail(f"--revoked {value!r}: expected ORG:SERIAL", EXIT_USAGE)
        pairs.add((org, int(serial)))
    return frozenset(pairs)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.command("init")(init)
    app.add_typer(network_app, name="network")
    app.add_typer(keys_app, name="keys")
    app.add_typer(cert_app, name="cert")
