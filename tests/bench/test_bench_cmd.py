"""`chaincity bench` option checks (refused before anything starts)."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from chaincity.cli import bench_cmd


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Test root."""

    bench_cmd.register(app)
    return app


def test_rate_and_max_exclude_each_other() -> None:
    result = CliRunner().invoke(_app(), ["bench", "--rate", "10", "--max"])
    assert result.exit_code == 2
    assert "exclude each other" in result.output


def test_bad_options_are_usage_errors() -> None:
    cases = [
        (["--workload", "mint"], "--workload"),
        (["--txs", "0"], "--txs"),
        (["--warmup", "40", "--duration", "30"], "--warmup"),
        (["--batch", "9000"], "--batch"),
    ]
    for args, word in cases:
        result = CliRunner().invoke(_app(), ["bench", *args])
        assert result.exit_code == 2, args
        assert word in result.output, args


def test_help_lists_the_issue_options() -> None:
    result = CliRunner().invoke(_app(), ["bench", "--help"])
    assert result.exit_code == 0
    for opt in ("--nodes", "--suite", "--workload", "--txs", "--rate", "--max", "--duration"):
        assert opt in result.output
