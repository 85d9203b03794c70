"""Four in-process validators on a simulated network: commit, execute, agree, catch up."""

from __future__ import annotations

import asyncio

from chaincity.consensus.core import get_leader
from chaincity.node import queries
from chaincity.node.metrics import CPU_METRIC, CpuPhases
from chaincity.node.wire import Kind
from tests.node.harness import make_network, restart
from tests.support import BOB_KEY, make_tx

DIGEST = "cd" * 32


def start_all(net) -> None:  # type: ignore[no-untyped-def]
    for node in net.nodes:
        node.start()


def test_transactions_commit_and_every_node_agrees() -> None:
    net, stores = make_network(4)
    start_all(net)
    raws = [
        make_tx("kv", "put", {"key": f"k{i}", "value": i}, nonce=i, expiry=500) for i in range(20)
    ]
    outcomes = net.nodes[1].submit_now(raws[:10]) + net.nodes[2].submit_now(raws[10:])
    assert all(o.error is None for o in outcomes)
    ids = [o.tx_id for o in outcomes]
    assert net.run_until(lambda: all(all(s.is_committed(t) for t in ids) for s in stores))
    tip = min(s.tip_height() for s in stores)
    roots = {s.exec_result(tip).state_root for s in stores}  # type: ignore[union-attr]
    assert len(roots) == 1
    status = net.nodes[0].tx_status(ids[3])
    assert status["status"] == "committed" and status["receipt"]["status"] == "ok"
    assert all(len(node.mempool) == 0 for node in net.nodes)


def test_failed_contract_call_is_reported_failed() -> None:
    net, stores = make_network(4)
    start_all(net)
    first = make_tx("notary", "record", {"digest": DIGEST}, expiry=500)
    again = make_tx("notary", "record", {"digest": DIGEST}, key=BOB_KEY, expiry=500)
    (a,) = net.nodes[0].submit_now([first])
    assert net.run_until(lambda: stores[0].is_committed(a.tx_id))
    (b,) = net.nodes[3].submit_now([again])
    assert net.run_until(lambda: stores[3].is_committed(b.tx_id))
    doc = net.nodes[3].tx_status(b.tx_id)
    assert doc["status"] == "failed" and "already recorded" in doc["receipt"]["error"]


def test_idle_chain_does_not_race_ahead() -> None:
    net, stores = make_network(4)
    start_all(net)
    net.run_until(lambda: False, limit_ms=10_000)
    # One empty block per idle interval at most, not one per network round trip.
    assert stores[0].tip_height() <= 12


def test_commits_continue_with_one_validator_down_and_it_catches_up() -> None:
    net, stores = make_network(4, round_timeout_ms=500)
    start_all(net)
    net.down.add(3)
    raws = [
        make_tx("kv", "put", {"key": f"k{i}", "value": i}, nonce=i, expiry=900) for i in range(30)
    ]
    ids = [o.tx_id for o in net.nodes[0].submit_now(raws)]
    assert net.run_until(lambda: all(stores[0].is_committed(t) for t in ids), 120_000)
    assert net.run_until(lambda: stores[0].tip_height() >= 10, 120_000)
    assert stores[3].tip_height() == 0
    restart(net, stores, 3)
    assert net.run_until(lambda: stores[3].tip_height() >= stores[0].tip_height() - 1, 120_000)
    h = stores[3].tip_height()
    assert stores[3].exec_result(h) == stores[0].exec_result(h)
    assert all(stores[3].is_committed(t) for t in ids)


def test_leader_crash_is_replaced_by_timeout() -> None:
    net, stores = make_network(4, round_timeout_ms=500)
    start_all(net)
    net.run_until(lambda: stores[0].tip_height() >= 2, 30_000)
    core = net.nodes[0].core
    assert core is not None
    next_leader = get_leader(core.vset, core.round + 1)
    net.down.add(next_leader)
    sender = (next_leader + 1) % 4
    ids = [
        o.tx_id
        for o in net.nodes[sender].submit_now(
            [make_tx("kv", "put", {"key": "x", "value": 1}, expiry=900)]
        )
    ]
    live = [s for i, s in enumerate(stores) if i != next_leader]
    assert net.run_until(lambda: all(s.is_committed(ids[0]) for s in live), 120_000)


def test_restart_with_same_store_never_double_votes() -> None:
    net, stores = make_network(4, round_timeout_ms=500)
    start_all(net)
    net.run_until(lambda: stores[0].tip_height() >= 3, 30_000)
    saves = stores[1].safety_saves
    assert saves > 0
    restart(net, stores, 1)
    ids = [
        o.tx_id
        for o in net.nodes[2].submit_now(
            [make_tx("kv", "put", {"key": "y", "value": 2}, expiry=900)]
        )
    ]
    assert net.run_until(lambda: all(s.is_committed(ids[0]) for s in stores), 120_000)


def test_a_broken_store_halts_the_chain_instead_of_diverging() -> None:
    net, stores = make_network(4)

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    start_all(net)
    stores[2].commit_block = refuse  # type: ignore[method-assign]
    raws = [make_tx("kv", "put", {"key": "k", "value": 1}, expiry=500)]
    (out,) = net.nodes[0].submit_now(raws)
    assert net.run_until(lambda: stores[0].is_committed(out.tx_id))
    assert net.run_until(lambda: net.nodes[2].halted is not None)
    assert "disk full" in str(net.nodes[2].halted)
    assert net.nodes[2].status()["halted"] == net.nodes[2].halted
    # The other three keep committing.
    (more,) = net.nodes[1].submit_now([make_tx("kv", "put", {"key": "k2", "value": 2}, expiry=500)])
    assert net.run_until(lambda: all(stores[i].is_committed(more.tx_id) for i in (0, 1, 3)))


def test_a_healthy_network_proposes_each_transaction_once() -> None:
    net, stores = make_network(4)
    start_all(net)
    raws = [
        make_tx("kv", "put", {"key": f"k{i}", "value": i}, nonce=i, expiry=500) for i in range(40)
    ]
    ids = []
    for k in range(0, 40, 10):
        ids += [o.tx_id for o in net.nodes[k // 10].submit_now(raws[k : k + 10])]
        net.run_until(lambda: False, limit_ms=150)  # spread submissions over rounds
    assert net.run_until(lambda: all(stores[0].is_committed(t) for t in ids))
    slots = [raw for h in range(stores[0].tip_height() + 1) for raw in stores[0].block(h).txs]  # type: ignore[union-attr]
    assert len(slots) == len(set(slots)) == 40


def test_a_transaction_reaching_a_pool_after_its_block_is_not_proposed_again() -> None:
    net, stores = make_network(4)
    # Gossip lags behind consensus: a block often reaches a validator before the
    # transactions it carries, which then sit in that validator's pool while the
    # block is still uncommitted.
    net.delay_ms_by_kind[Kind.TXS] = 8
    start_all(net)
    ids = []
    for k in range(12):
        raws = [
            make_tx("kv", "put", {"key": f"k{k}.{i}", "value": i}, nonce=k * 10 + i, expiry=500)
            for i in range(5)
        ]
        # To the leader of the round under way: it proposes them at once, before
        # its gossip reaches the others.
        core = net.nodes[0].core
        assert core is not None
        ids += [o.tx_id for o in net.nodes[get_leader(core.vset, core.round)].submit_now(raws)]
        net.run_until(lambda: False, limit_ms=7)
    assert net.run_until(lambda: all(s.is_committed(t) for s in stores for t in ids))
    slots = [raw for h in range(stores[0].tip_height() + 1) for raw in stores[0].block(h).txs]  # type: ignore[union-attr]
    assert len(slots) == len(set(slots)) == 60
    assert all(len(node.mempool) == 0 for node in net.nodes)


def test_block_view_lists_transaction_ids_and_stays_the_same_on_repeat() -> None:
    net, stores = make_network(4)
    start_all(net)
    outcomes = net.nodes[0].submit_now(
        [make_tx("kv", "put", {"key": f"k{i}", "value": i}, nonce=i, expiry=500) for i in range(3)]
    )
    ids = [o.tx_id for o in outcomes]
    assert net.run_until(lambda: all(stores[0].is_committed(t) for t in ids))
    height = stores[0].receipt(ids[0]).height  # type: ignore[union-attr]
    first = net.nodes[0].block(height)
    assert first is not None and set(first["tx_ids"]) >= {t.hex() for t in ids[:1]}
    first["tx_ids"].clear()  # a caller changing its copy does not change the node's
    first["header"]["height"] = -1
    again = net.nodes[0].block(height)
    assert again is not None and ids[0].hex() in again["tx_ids"]
    assert again["header"]["height"] == height
    assert net.nodes[0].block(stores[0].tip_height() + 1) is None


def _committed_puts(count: int, tag: str):  # type: ignore[no-untyped-def]
    """A started 4-node network, its stores, and the ids of ``count`` puts it committed."""
    net, stores = make_network(4)
    start_all(net)
    raws = [
        make_tx("kv", "put", {"key": f"{tag}{i}", "value": i}, nonce=i, expiry=500)
        for i in range(count)
    ]
    ids = [o.tx_id for o in net.nodes[0].submit_now(raws)]
    assert net.run_until(lambda: all(s.is_committed(t) for s in stores for t in ids))
    return net, stores, ids


def test_block_view_of_a_new_block_takes_its_ids_from_execution(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    net, stores, ids = _committed_puts(3, "k")
    heights = {stores[3].receipt(t).height for t in ids}  # type: ignore[union-attr]
    # Recent blocks are summarised at commit: answering decodes no transaction.
    monkeypatch.setattr(queries, "_tx_id_or_none", _must_not_decode)
    listed = [t for h in sorted(heights) for t in net.nodes[3].block(h)["tx_ids"]]  # type: ignore[index]
    assert listed == [t.hex() for t in ids]
    monkeypatch.undo()
    # An older block is summarised on demand, to the same ids.
    for h in heights:
        net.nodes[3]._summaries.pop(h)
    again = [t for h in sorted(heights) for t in net.nodes[3].block(h)["tx_ids"]]  # type: ignore[index]
    assert again == listed


def _must_not_decode(suite, raw):  # type: ignore[no-untyped-def]
    raise AssertionError("a transaction was decoded to answer for a recent block")


def test_a_vote_and_the_data_it_rests_on_take_one_durable_write() -> None:
    net, stores = make_network(4)
    start_all(net)
    (out,) = net.nodes[0].submit_now([make_tx("kv", "put", {"key": "w", "value": 1}, expiry=500)])
    assert net.run_until(lambda: all(s.is_committed(out.tx_id) for s in stores))
    store = stores[1]
    # Each accepted proposal is kept together with the safety data of the vote for
    # it, so there are fewer durable writes than things written.
    assert 0 < store.consensus_writes < store.safety_saves + len(store.pending)


def test_a_proposal_in_the_step_that_commits_a_block_is_written_with_that_block() -> None:
    _net, stores, _ids = _committed_puts(8, "m")
    # A proposal carries the certificate that commits its grandparent: a voter's
    # step commits that block and keeps the proposal, which rides in the block's
    # transaction instead of a durable write of its own. (The vote comes a step
    # later, once the block is executed, and is written before it leaves.)
    voters = [s for s in stores if s.merged_writes > 0]
    assert len(voters) >= 3
    assert all(s.safety is not None and s.safety.highest_vote_round > 0 for s in voters)
    assert all(p.block.header.height > s.tip_height() for s in voters for p in s.pending_blocks())


def test_cpu_is_counted_by_phase_once_per_batch_and_block() -> None:
    net, stores = make_network(4)
    ticks = iter(range(1_000_000))  # each reading one second later: a counter counts calls
    clock = lambda: float(next(ticks))  # noqa: E731
    for node in net.nodes:
        node.cpu = CpuPhases(node.deps.metrics, "main", clock)
    start_all(net)
    raws = [
        make_tx("kv", "put", {"key": f"k{i}", "value": i}, nonce=i, expiry=500) for i in range(8)
    ]
    outcomes = net.nodes[1].submit_now(raws)
    ids = [o.tx_id for o in outcomes]
    assert net.run_until(lambda: all(all(s.is_committed(t) for t in ids) for s in stores))
    metrics = net.nodes[0].deps.metrics

    def seconds(phase: str) -> float:
        return metrics.counter_value(CPU_METRIC, chain="main", phase=phase)

    applied = stores[0].tip_height()  # blocks 1..tip, each executed once
    for phase in ("execute", "state_root", "ledger_write", "pool_upkeep"):
        assert seconds(phase) == applied, phase
    # Node 0 got the batch by gossip: prechecked, checked and pooled as one batch.
    assert seconds("signatures") == 1
    assert seconds("admission") == 2
    assert seconds("consensus") > 0
    assert f'{CPU_METRIC}{{chain="main",phase="execute"}} {applied}' in metrics.render()


async def test_a_commit_wakes_whoever_waits_for_one() -> None:
    net, stores = make_network(4)
    start_all(net)
    node, store = net.nodes[0], stores[0]
    waiting = asyncio.ensure_future(node.wait_commit(30.0))
    await asyncio.sleep(0)  # the waiter is now waiting
    assert not waiting.done()
    tip = store.tip_height()
    assert net.run_until(lambda: store.tip_height() > tip)
    await asyncio.wait_for(waiting, 5.0)
    # With no commit meanwhile, a wait ends after its timeout.
    await asyncio.wait_for(node.wait_commit(0.01), 5.0)
