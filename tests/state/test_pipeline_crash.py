"""Kill a writer that commits behind with SIGKILL; every acknowledged version survives.

A version is acknowledged once settled (its commit returned): one still committing
behind when the kill lands may be lost, never one before it.
"""

from __future__ import annotations

import random
from pathlib import Path

from chaincity.state import compute_root
from tests.ledger.test_crash import _kill_after_random_acks
from tests.state.pipeline_workload import SUITE, model, open_state

ITERATIONS = 10
WRITER = Path(__file__).with_name("pipeline_workload.py")


def test_sigkill_loses_no_version_acknowledged_while_committing_behind(tmp_path: Path) -> None:
    rng = random.Random(20261202)
    for iteration in range(ITERATIONS):
        acked = _kill_after_random_acks(tmp_path, rng, WRITER)
        store, state = open_state(str(tmp_path))
        try:
            latest = state.latest_version
            assert latest is not None and latest >= acked, f"iteration {iteration}: {acked}"
            expected = model(latest)
            assert state.root() == compute_root(SUITE, expected)
            for key, value in expected.items():
                assert state.get(key) == value
        finally:
            state.close()
            store.close()
