"""The local-network helpers shared by `chaincity up` and the bench."""

from __future__ import annotations

import socket

from chaincity.node.local import org_layout, read_status


def test_org_layout_splits_even_counts_into_two_organizations() -> None:
    assert org_layout(4) == (2, 2)
    assert org_layout(6) == (2, 3)
    assert org_layout(1) == (1, 1)
    assert org_layout(2) == (2, 1)
    assert org_layout(7) == (7, 1)


def test_read_status_of_a_node_that_does_not_answer_is_none() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: the connection is refused
        assert read_status(f"http://127.0.0.1:{port}", 0.5) is None
