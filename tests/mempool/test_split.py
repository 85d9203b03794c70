"""Admission in two halves (precheck, then the signatures elsewhere, then
admit_checked) accepts and refuses exactly as admitting one by one does."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaincity.mempool import AdmitError, Candidate, Mempool, MempoolParams, Reject, verify_jobs
from chaincity.types.tx import Transaction, tx_id
from tests.support import BOB_KEY, SUITE, authorize, make_tx

NOW_MS = 1
HEIGHT = 10


def pool(committed: set[bytes] | None = None, **params: int) -> Mempool:
    return Mempool(
        suite=SUITE,
        chain_id="main",
        authorize=authorize,
        is_committed=(committed if committed is not None else set()).__contains__,
        params=MempoolParams(**params),
    )


def id_of(raw: bytes) -> bytes:
    return tx_id(SUITE, msgspec.msgpack.decode(raw, type=Transaction).body)


def forged(raw: bytes) -> bytes:
    """The same body (so the same id) with a signature that does not verify."""
    fields = msgspec.msgpack.decode(raw)
    fields[1] = bytes(64)
    return msgspec.msgpack.encode(fields)


GOOD = [make_tx("kv", "put", {"k": i}, nonce=i, expiry=500) for i in range(4)]
BOBS = [make_tx("kv", "put", {"k": i}, key=BOB_KEY, nonce=i, expiry=500) for i in range(2)]
COMMITTED = make_tx("kv", "put", {"k": "done"}, nonce=77, expiry=500)
# A certificate valid only until 10**13 ms: refused by the authorizer at LATE_MS.
LATE_MS = 10**14
PALETTE = [
    *GOOD,
    *BOBS,
    forged(GOOD[0]),
    forged(GOOD[1]),
    COMMITTED,
    b"\x00",
    make_tx("kv", "put", {}, chain="energy"),
    make_tx("kv", "put", {}, expiry=HEIGHT),
]


def outcome(x: bytes | AdmitError) -> tuple[str, bytes]:
    """What a caller sees: the id, or the refusal, its reason and the id."""
    if isinstance(x, AdmitError):
        return (f"{x.reject.value}: {x.reason}", x.tx_id)
    return ("accepted", x)


def one_by_one(mp: Mempool, raws: list[bytes], now_ms: int) -> list[tuple[str, bytes]]:
    out = []
    for raw in raws:
        try:
            out.append(outcome(mp.admit(raw, HEIGHT, now_ms)))
        except AdmitError as exc:
            out.append(outcome(exc))
    return out


def split(mp: Mempool, raws: list[bytes], now_ms: int) -> list[tuple[str, bytes]]:
    candidates = mp.precheck(raws, HEIGHT)
    ok = verify_jobs(SUITE, candidates.jobs)
    return [outcome(x) for x in mp.admit_checked(candidates, ok, HEIGHT, now_ms)]


def state(mp: Mempool) -> tuple[object, ...]:
    return (mp.take(10**6, 10**12), mp.size_bytes, mp.stats, mp.drain_gossip(10**6))


def test_mixed_batch_gets_each_reason_in_order() -> None:
    mp = pool(committed={id_of(COMMITTED)})
    raws = [GOOD[0], forged(GOOD[1]), GOOD[0], COMMITTED, GOOD[1], b"\x00", BOBS[0]]
    got = [o[0].split(":")[0] for o in split(mp, raws, NOW_MS)]
    assert got == [
        "accepted",
        "bad_signature",
        "duplicate",
        "committed",
        # The forged copy was refused, so the good one with the same id is new.
        "accepted",
        "malformed",
        "accepted",
    ]
    assert len(mp) == 3 and mp.stats["accepted"] == 3 and mp.stats["duplicate"] == 1


def test_unauthorized_sender_is_refused_after_the_signature() -> None:
    mp = pool()
    (err,) = mp.admit_many([forged(GOOD[0])], HEIGHT, LATE_MS)
    assert isinstance(err, AdmitError) and err.reject is Reject.BAD_SIGNATURE
    (err,) = mp.admit_many([GOOD[0]], HEIGHT, LATE_MS)
    assert isinstance(err, AdmitError) and err.reject is Reject.UNAUTHORIZED
    assert len(mp) == 0


def test_full_pool_and_sender_limit_are_checked_before_the_signature() -> None:
    mp = pool(count_max=2, per_sender_max=1)
    raws = [GOOD[0], forged(GOOD[1]), BOBS[0], forged(BOBS[1])]
    got = [o[0].split(":")[0] for o in split(mp, raws, NOW_MS)]
    assert got == ["accepted", "sender_limit", "accepted", "full"]


def test_precheck_leaves_duplicates_and_committed_without_signature_work() -> None:
    mp = pool(committed={id_of(COMMITTED)})
    mp.admit(GOOD[0], HEIGHT, NOW_MS)
    candidates = mp.precheck([GOOD[0], COMMITTED, GOOD[1], GOOD[1], b"\x00"], HEIGHT)
    kinds = [type(x).__name__ for x in candidates.items]
    assert kinds == ["AdmitError", "AdmitError", "Candidate", "Candidate", "AdmitError"]
    # Identical copies share one check.
    assert len(candidates.jobs) == 1
    assert len(mp) == 1 and mp.stats["accepted"] == 1 and mp.stats["duplicate"] == 0


@settings(max_examples=60, deadline=None)
@given(
    picks=st.lists(st.integers(0, len(PALETTE) - 1), min_size=1, max_size=12),
    count_max=st.integers(1, 8),
    per_sender_max=st.integers(1, 8),
    late=st.booleans(),
)
def test_split_admits_exactly_as_one_by_one(
    picks: list[int], count_max: int, per_sender_max: int, late: bool
) -> None:
    raws = [PALETTE[i] for i in picks]
    now_ms = LATE_MS if late else NOW_MS
    limits = {"count_max": count_max, "per_sender_max": per_sender_max}
    committed = {id_of(COMMITTED)}
    a, b, c = (pool(committed, **limits) for _ in range(3))
    expected = one_by_one(a, raws, now_ms)
    assert split(b, raws, now_ms) == expected
    assert [outcome(x) for x in c.admit_many(raws, HEIGHT, now_ms)] == expected
    assert state(a) == state(b) == state(c)


def test_two_batches_checked_at_once_admit_a_transaction_once() -> None:
    mp = pool()
    first = mp.precheck([GOOD[0], GOOD[1]], HEIGHT)
    second = mp.precheck([GOOD[1], GOOD[0]], HEIGHT)
    assert all(isinstance(x, Candidate) for x in (*first.items, *second.items))
    ok_first, ok_second = verify_jobs(SUITE, first.jobs), verify_jobs(SUITE, second.jobs)
    assert all(isinstance(x, bytes) for x in mp.admit_checked(first, ok_first, HEIGHT, NOW_MS))
    again = mp.admit_checked(second, ok_second, HEIGHT, NOW_MS)
    assert [x.reject for x in again if isinstance(x, AdmitError)] == [Reject.DUPLICATE] * 2
    assert len(mp) == 2 and mp.stats["accepted"] == 2 and mp.drain_gossip(10) == GOOD[:2]


def test_transaction_committed_while_checked_is_refused_as_committed() -> None:
    committed: set[bytes] = set()
    mp = pool(committed)
    candidates = mp.precheck([GOOD[0], GOOD[1]], HEIGHT)
    ok = verify_jobs(SUITE, candidates.jobs)
    committed.add(id_of(GOOD[0]))  # a block holding it committed meanwhile
    out = mp.admit_checked(candidates, ok, HEIGHT + 1, NOW_MS)
    assert isinstance(out[0], AdmitError) and out[0].reject is Reject.COMMITTED
    assert out[1] == id_of(GOOD[1]) and len(mp) == 1


def test_transaction_expired_while_checked_is_refused_as_expired() -> None:
    soon = make_tx("kv", "put", {}, expiry=HEIGHT + 1)
    mp = pool()
    candidates = mp.precheck([soon], HEIGHT)
    ok = verify_jobs(SUITE, candidates.jobs)
    (out,) = mp.admit_checked(candidates, ok, HEIGHT + 1, NOW_MS)
    assert isinstance(out, AdmitError) and out.reject is Reject.EXPIRED
    assert len(mp) == 0


def test_pool_filled_while_checked_refuses_as_full() -> None:
    mp = pool(count_max=1)
    candidates = mp.precheck([GOOD[0]], HEIGHT)
    mp.admit(GOOD[1], HEIGHT, NOW_MS)
    (out,) = mp.admit_checked(candidates, verify_jobs(SUITE, candidates.jobs), HEIGHT, NOW_MS)
    assert isinstance(out, AdmitError) and out.reject is Reject.FULL


def test_results_must_match_the_jobs() -> None:
    mp = pool()
    candidates = mp.precheck([GOOD[0]], HEIGHT)
    with pytest.raises(ValueError, match="one signature result"):
        mp.admit_checked(candidates, [], HEIGHT, NOW_MS)
    assert len(mp) == 0


def test_a_signature_result_of_false_is_never_admitted() -> None:
    mp = pool()
    candidates = mp.precheck([GOOD[0]], HEIGHT)
    (out,) = mp.admit_checked(candidates, [False], HEIGHT, NOW_MS)
    assert isinstance(out, AdmitError) and out.reject is Reject.BAD_SIGNATURE
    assert len(mp) == 0 and mp.drain_gossip(10) == []


def test_signatures_beyond_the_room_are_not_checked_under_overload() -> None:
    mp = pool(count_max=2)
    candidates = mp.precheck(GOOD, HEIGHT)
    assert len(candidates.jobs) == 2  # only the two that can fit
    assert [c.job for c in candidates.items if isinstance(c, Candidate)] == [0, 1, -1, -1]
    got = [o[0].split(":")[0] for o in split(pool(count_max=2), GOOD, NOW_MS)]
    assert got == ["accepted", "accepted", "full", "full"]


def test_a_deferred_signature_is_checked_when_room_is_left_after_all() -> None:
    # The first candidate takes the room but fails its signature: the next one, whose
    # check was deferred, is admitted as it would be one by one, after its own check.
    raws = [forged(GOOD[0]), GOOD[1], forged(GOOD[2])]
    got = [o[0].split(":")[0] for o in split(pool(count_max=1), raws, NOW_MS)]
    assert got == ["bad_signature", "accepted", "full"]
    got = [o[0].split(":")[0] for o in split(pool(count_max=2), raws, NOW_MS)]
    assert got == ["bad_signature", "accepted", "bad_signature"]
