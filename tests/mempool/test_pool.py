"""Mempool admission: every rejection has a reason, accepted transactions stay."""

from __future__ import annotations

from collections.abc import Collection

import msgspec
import pytest

from chaincity.mempool import AdmitError, Mempool, MempoolParams, Reject
from chaincity.types.primitives import TX_SIZE_MAX
from chaincity.types.tx import Transaction, tx_id
from tests.support import BOB_KEY, SUITE, authorize, make_tx


def pool(committed: set[bytes] | None = None, **params: int) -> Mempool:
    return Mempool(
        suite=SUITE,
        chain_id="main",
        authorize=authorize,
        is_committed=(committed or set()).__contains__,
        params=MempoolParams(**params),
    )


def id_of(raw: bytes) -> bytes:
    return tx_id(SUITE, msgspec.msgpack.decode(raw, type=Transaction).body)


def test_admits_once_and_counts() -> None:
    mp = pool()
    raw = make_tx("kv", "put", {"key": "a", "value": 1})
    tid = mp.admit(raw, height=0, now_ms=1)
    assert tid == id_of(raw) and tid in mp and len(mp) == 1
    with pytest.raises(AdmitError) as err:
        mp.admit(raw, height=0, now_ms=1)
    assert err.value.reject is Reject.DUPLICATE
    assert len(mp) == 1 and mp.stats["duplicate"] == 1


def forged(raw: bytes) -> bytes:
    fields = msgspec.msgpack.decode(raw)
    fields[1] = bytes(64)
    return msgspec.msgpack.encode(fields)


@pytest.mark.parametrize(
    ("raw", "reject"),
    [
        (b"\x00", Reject.MALFORMED),
        (b"\x93" + b"\x00" * 10, Reject.MALFORMED),
        (b"\x00" * (TX_SIZE_MAX + 1), Reject.TOO_LARGE),
        (make_tx("kv", "put", {}, chain="energy"), Reject.WRONG_CHAIN),
        (make_tx("kv", "put", {}, expiry=10), Reject.EXPIRED),
        (make_tx("kv", "put", {}, expiry=5_000), Reject.EXPIRY_TOO_FAR),
        (forged(make_tx("kv", "put", {})), Reject.BAD_SIGNATURE),
    ],
)
def test_bad_transactions_are_refused_and_change_nothing(raw: bytes, reject: Reject) -> None:
    mp = pool()
    with pytest.raises(AdmitError) as err:
        mp.admit(raw, height=10, now_ms=1)
    assert err.value.reject is reject
    assert err.value.reason
    assert len(mp) == 0 and mp.size_bytes == 0 and mp.drain_gossip(10) == []


def test_committed_transaction_is_refused() -> None:
    raw = make_tx("kv", "put", {})
    with pytest.raises(AdmitError) as err:
        pool(committed={id_of(raw)}).admit(raw, 0, 1)
    assert err.value.reject is Reject.COMMITTED


def test_expired_certificate_is_unauthorized() -> None:
    with pytest.raises(AdmitError) as err:
        pool().admit(make_tx("kv", "put", {}), 0, now_ms=10**14)
    assert err.value.reject is Reject.UNAUTHORIZED
    assert "not valid at this time" in err.value.reason


def test_full_pool_refuses_new_but_keeps_accepted() -> None:
    mp = pool(count_max=3)
    accepted = [mp.admit(make_tx("kv", "put", {}, nonce=i), 0, 1) for i in range(3)]
    with pytest.raises(AdmitError) as err:
        mp.admit(make_tx("kv", "put", {}, nonce=99), 0, 1)
    assert err.value.reject is Reject.FULL and err.value.retryable
    assert [tid for tid, _ in mp.take(10, 10**9)] == accepted


def test_per_sender_limit_leaves_room_for_others() -> None:
    mp = pool(per_sender_max=2)
    for i in range(2):
        mp.admit(make_tx("kv", "put", {}, nonce=i), 0, 1)
    with pytest.raises(AdmitError) as err:
        mp.admit(make_tx("kv", "put", {}, nonce=2), 0, 1)
    assert err.value.reject is Reject.SENDER_LIMIT
    mp.admit(make_tx("kv", "put", {}, key=BOB_KEY), 0, 1)
    mp.remove_committed([id_of(make_tx("kv", "put", {}, nonce=0))])
    mp.admit(make_tx("kv", "put", {}, nonce=2), 0, 1)
    assert len(mp) == 3


def test_take_leaves_transactions_pooled_until_they_commit() -> None:
    mp = pool()
    ids = [mp.admit(make_tx("kv", "put", {}, nonce=i), 0, 1) for i in range(5)]
    assert [t for t, _ in mp.take(2, 10**9)] == ids[:2]
    # Nothing is consumed: a proposal that never commits needs no undo.
    assert [t for t, _ in mp.take(10, 10**9)] == ids
    mp.remove_committed(ids[:2])
    assert [t for t, _ in mp.take(10, 10**9)] == ids[2:]
    mp.remove_committed(ids)
    assert len(mp) == 0 and mp.size_bytes == 0


def test_take_respects_byte_budget() -> None:
    mp = pool()
    raws = [make_tx("kv", "put", {}, nonce=i) for i in range(4)]
    for raw in raws:
        mp.admit(raw, 0, 1)
    taken = mp.take(10, 2 * len(raws[0]) + 1)
    assert len(taken) == 2


def test_expired_transactions_leave_the_pool() -> None:
    mp = pool()
    mp.admit(make_tx("kv", "put", {}, expiry=20), 0, 1)
    keep = mp.admit(make_tx("kv", "put", {}, nonce=2, expiry=40), 0, 1)
    mp.take(1, 10**9)
    assert len(mp.remove_expired(20)) == 1
    assert keep in mp and len(mp) == 1


def test_expiry_matches_a_scan_of_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from chaincity.mempool import pool as pool_module

    monkeypatch.setattr(pool_module, "EXPIRIES_SLACK", 4)  # compaction runs too
    rng = random.Random(7)
    mp = pool()
    expiry: dict[bytes, int] = {}
    for i in range(120):
        e = rng.randrange(2, 60)
        expiry[mp.admit(make_tx("kv", "put", {}, nonce=i, expiry=e), 0, 1)] = e
    for height in range(1, 61):
        committed = [t for t in expiry if rng.random() < 0.05]
        mp.remove_committed(committed)
        for t in committed:
            del expiry[t]
        due = {t for t, e in expiry.items() if e <= height}
        assert set(mp.remove_expired(height)) == due
        for t in due:
            del expiry[t]
        assert len(mp) == len(expiry) and all(t in mp for t in expiry)
    assert len(mp) == 0


def test_gossip_only_local_admissions_in_batches() -> None:
    mp = pool()
    for i in range(5):
        mp.admit(make_tx("kv", "put", {}, nonce=i), 0, 1)
    mp.admit(make_tx("kv", "put", {}, nonce=9), 0, 1, gossip=False)
    assert len(mp.drain_gossip(3)) == 3
    assert len(mp.drain_gossip(3)) == 2
    assert mp.drain_gossip(3) == []


def test_take_skips_transactions_already_in_flight() -> None:
    mp = pool()
    raws = [make_tx("kv", "put", {}, nonce=i) for i in range(4)]
    ids = [mp.admit(raw, 0, 1) for raw in raws]
    in_flight = {raws[1], raws[3], b"not pooled"}
    assert [t for t, _ in mp.take(10, 10**9, in_flight)] == [ids[0], ids[2]]
    assert [t for t, _ in mp.take(1, 10**9, in_flight)] == [ids[0]]
    # Skipped transactions count against neither budget.
    assert [t for t, _ in mp.take(2, 2 * len(raws[0]) + 1, in_flight)] == [ids[0], ids[2]]
    assert [t for t, _ in mp.take(10, 10**9)] == ids


def test_admit_many_matches_admit_one_by_one() -> None:
    a = make_tx("kv", "put", {"key": "a", "value": 1})
    b = make_tx("kv", "put", {"key": "b", "value": 2})
    done = make_tx("kv", "put", {"key": "c", "value": 3})
    lookups: list[int] = []

    def committed_among(tids: Collection[bytes]) -> set[bytes]:
        lookups.append(len(tids))
        return {id_of(done)} & set(tids)

    mp = Mempool(
        suite=SUITE,
        chain_id="main",
        authorize=authorize,
        is_committed=lambda _t: False,
        committed_among=committed_among,
    )
    out = mp.admit_many([a, b"\x00", a, done, b], height=0, now_ms=1)
    assert out[0] == id_of(a) and out[4] == id_of(b)
    assert [o.reject for o in out if isinstance(o, AdmitError)] == [
        Reject.MALFORMED,
        Reject.DUPLICATE,
        Reject.COMMITTED,
    ]
    assert lookups == [4]  # one lookup for the batch, malformed bytes left out
    assert len(mp) == 2 and mp.stats["accepted"] == 2 and mp.stats["duplicate"] == 1


def test_pooled_gives_the_decoded_transaction_until_it_leaves() -> None:
    mp = pool()
    raw = make_tx("kv", "put", {"key": "a", "value": 1})
    assert mp.pooled(raw) is None
    tid = mp.admit(raw, height=0, now_ms=1)
    found = mp.pooled(raw)
    assert found is not None and found[0] == tid
    assert found[1] == msgspec.msgpack.decode(raw, type=Transaction)
    mp.remove_committed([tid])
    assert mp.pooled(raw) is None


def test_id_and_signature_use_the_exact_body_bytes() -> None:
    from chaincity.codec import encode
    from chaincity.mempool.pool import _body_bytes

    raw = make_tx("kv", "put", {"key": "a" * 300, "value": 1})
    tx = msgspec.msgpack.decode(raw, type=Transaction)
    assert _body_bytes(raw, tx) == encode(tx.body)
