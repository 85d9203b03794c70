"""Keeps each phase's report on the test item, so a fixture can tell a failed test."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


REPORTS = pytest.StashKey[dict[str, Any]]()


def failed(item: pytest.Item) -> bool:
    """Whether the test's own run (its call phase) failed."""
    report = item.stash.get(REPORTS, {}).get("call")
    return bool(report is not None and report.failed)
