"""The operator's commands: init, network show, keys, cert (via typer's CliRunner)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chaincity.cli.main import app

DAY_MS = 86_400_000


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "net"
    code, out, err = run("init", "--dir", root)
    assert code == 0, err
    assert "4 validators" in out
    return root


def assert_one_line_error(code: int, err: str, expected_code: int, *needles: str) -> None:
    assert code == expected_code
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def test_init_then_show(net: Path) -> None:
    code, out, err = run("network", "show", "--dir", net)
    assert code == 0, err
    genesis = json.loads((net / "genesis.json").read_text())
    for text in ("org1-node1", "org2-node2", "127.0.0.1:7703", "127.0.0.1:8700", "genesis hash"):
        assert text in out
    assert genesis["validators"]["validators"][0]["public_key"] in out
    assert "orgs/org1/member.key" in out


def test_init_refuses_to_overwrite_without_force(net: Path) -> None:
    before = (net / "genesis.json").read_bytes()
    code, _, err = run("init", "--dir", net)
    assert_one_line_error(code, err, 1, str(net), "--force")
    assert (net / "genesis.json").read_bytes() == before


def test_init_force_replaces(tmp_path: Path) -> None:
    target = tmp_path / "net"
    assert run("init", "--dir", target, "--orgs", "1", "--validators-per-org", "1")[0] == 0
    before = (target / "genesis.json").read_bytes()
    code, _, err = run("init", "--dir", target, "--orgs", "1", "--force", "--base-port", "9100")
    assert code == 0, err
    assert (target / "genesis.json").read_bytes() != before
    assert "port = 9101" in (target / "nodes/org1-node2/node.toml").read_text()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--suite", "md5-rsa"), "unknown crypto suite 'md5-rsa'"),
        (("--orgs", "0"), "--orgs"),
        (("--base-port", "65535"), "--base-port"),
    ],
)
def test_init_bad_options(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    code, _, err = run("init", "--dir", tmp_path / "net", *args)
    assert_one_line_error(code, err, 2, needle)
    assert not (tmp_path / "net").exists()


def test_show_reports_a_malformed_file(net: Path, tmp_path: Path) -> None:
    code, _, err = run("network", "show", "--dir", tmp_path)
    assert_one_line_error(code, err, 1, "genesis.json", "cannot read")
    (tmp_path / "genesis.json").write_text('{"type": "chaincity-genesis", "version": 1}')
    code, _, err = run("network", "show", "--dir", tmp_path)
    assert_one_line_error(code, err, 1, "genesis.json", "missing required field")


def test_keys_new_and_show(tmp_path: Path) -> None:
    key = tmp_path / "alice.key"
    code, out, _ = run("keys", "new", "--out", key)
    assert code == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    public = out.split()[-1]
    code, out, _ = run("keys", "show", key)
    assert code == 0
    assert f"public key: {public}" in out
    assert json.loads(key.read_text())["private_key"] not in out
    code, _, err = run("keys", "new", "--out", key)
    assert_one_line_error(code, err, 1, "already exists")
    key.write_text('{"type": "chaincity-private-key", "suite": "ed25519-sha256"}')
    code, _, err = run("keys", "show", key)
    assert_one_line_error(code, err, 1, str(key), "missing private_key")


def issue(net: Path, tmp_path: Path, *extra: str) -> Path:
    key, cert = tmp_path / "alice.key", tmp_path / "alice.cert"
    assert run("keys", "new", "--out", key)[0] == 0
    code, out, err = run(
        "cert", "issue", "--dir", net, "--org", "org1", "--subject", "alice",
        "--role", "member", "--role", "clerk", "--key", key, "--out", cert, *extra,
    )  # fmt: skip
    assert code == 0, err
    assert "alice of org1" in out
    return cert


def verify(net: Path, cert: Path, *extra: str | Path) -> tuple[int, str, str]:
    return run("cert", "verify", cert, "--dir", net, *extra)


def test_issue_then_verify(net: Path, tmp_path: Path) -> None:
    cert = issue(net, tmp_path)
    code, out, err = verify(net, cert, "--role", "clerk")
    assert code == 0, err
    assert "ok: alice of org1" in out


def test_expired_certificate_is_rejected(net: Path, tmp_path: Path) -> None:
    cert = issue(net, tmp_path, "--days", "1")
    not_after = json.loads(cert.read_text())["not_after_ms"]
    assert verify(net, cert, "--at-ms", str(not_after))[0] == 0
    code, _, err = verify(net, cert, "--at-ms", str(not_after + 1))
    assert_one_line_error(code, err, 1, str(cert), "expired")


def test_revoked_certificate_is_rejected(net: Path, tmp_path: Path) -> None:
    cert = issue(net, tmp_path)
    serial = json.loads(cert.read_text())["serial"]
    assert verify(net, cert, "--revoked", f"org2:{serial}")[0] == 0
    code, _, err = verify(net, cert, "--revoked", f"org1:{serial}")
    assert_one_line_error(code, err, 1, "revoked")
    code, _, err = verify(net, cert, "--revoked", "org1")
    assert_one_line_error(code, err, 2, "ORG:SERIAL")
    code, _, err = verify(net, cert, "--revoked", "org1:\u00b2")  # isdigit(), not int()
    assert_one_line_error(code, err, 2, "ORG:SERIAL")


def test_tampered_certificate_is_rejected(net: Path, tmp_path: Path) -> None:
    cert = issue(net, tmp_path)
    doc = json.loads(cert.read_text())
    doc["roles"] = ["member", "clerk", "admin"]
    cert.write_text(json.dumps(doc))
    code, _, err = verify(net, cert)
    assert_one_line_error(code, err, 1, "signature does not verify")
    cert.write_text("{" + cert.read_text())
    code, _, err = verify(net, cert)
    assert_one_line_error(code, err, 1, str(cert))


def test_certificate_from_another_network_is_rejected(net: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert run("init", "--dir", other, "--orgs", "1", "--validators-per-org", "1")[0] == 0
    cert = issue(other, tmp_path)  # same org name and network id, different CA
    code, _, err = verify(net, cert)
    assert_one_line_error(code, err, 1, "signature does not verify under org1's CA key")
    code, _, err = verify(net, cert, "--role", "admin")
    assert_one_line_error(code, err, 1, "signature")


def test_missing_role_and_bad_issue_options(net: Path, tmp_path: Path) -> None:
    cert = issue(net, tmp_path)
    code, _, err = verify(net, cert, "--role", "admin")
    assert_one_line_error(code, err, 1, "lacks role 'admin'")
    code, _, err = run(
        "cert", "issue", "--dir", net, "--org", "org1", "--subject", "bob",
        "--out", tmp_path / "bob.cert",
    )  # fmt: skip
    assert_one_line_error(code, err, 2, "--key", "--public-key")
    code, _, err = run(
        "cert", "issue", "--dir", net, "--org", "org7", "--subject", "bob",
        "--public-key", "00" * 32, "--out", tmp_path / "bob.cert",
    )  # fmt: skip
    assert_one_line_error(code, err, 1, "no organization 'org7'")


def test_issue_checks_subject_and_roles(net: Path, tmp_path: Path) -> None:
    for flag, value, needle in (
        ("--subject", "x" * 65, "--subject: Expected `str` of length <= 64"),
        ("--role", "", "--role"),
    ):
        args = {"--subject": "bob", "--role": "member", flag: value}
        code, _, err = run(
            "cert", "issue", "--dir", net, "--org", "org1", "--public-key", "11" * 32,
            "--out", tmp_path / "bob.cert", *[x for kv in args.items() for x in kv],
        )  # fmt: skip
        assert_one_line_error(code, err, 1, needle)
        assert not (tmp_path / "bob.cert").exists()


def test_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run("init", "--dir", blocker / "net")
    assert_one_line_error(code, err, 1, str(blocker))
