"""A network of one validator commits on its own (its votes go to itself)."""

from __future__ import annotations

from tests.node.harness import make_network
from tests.support import make_tx


def test_one_validator_commits_alone() -> None:
    net, stores = make_network(1)
    net.nodes[0].start()
    outs = net.nodes[0].submit_now(
        [make_tx("kv", "put", {"key": f"k{i}", "value": i}, nonce=i, expiry=500) for i in range(5)]
    )
    ids = [o.tx_id for o in outs]
    assert net.run_until(lambda: all(stores[0].is_committed(t) for t in ids), 20_000)
    assert net.nodes[0].tx_status(ids[4])["status"] == "committed"
