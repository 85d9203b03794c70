"""Fill a fresh network's state before the clock starts, so a run can measure a
large state: ``kv.put_many`` transactions of up to 1,000 keys each, a few in
flight at a time (a block of millions of writes would outlast round timeouts)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

from chaincity.client import Client, ClientError, Signer
from chaincity.contracts.kv import PUT_MANY_MAX

STATE_KEYS_MAX = 10_000_000
IN_FLIGHT_TXS = 16
TIMEOUT_S = 3_600.0
RETRY_S = 0.5
NONCE_BASE = 1 << 40  # apart from the workload's nonces


class PreloadError(Exception):
    """The state could not be filled (a transaction failed or did not commit in time)."""


def build_preload(
    signers: Sequence[Signer], keys: int, expiry_height: int, run_tag: str
) -> list[bytes]:
    """Transactions writing ``keys`` keys ``pre/<run_tag>/<n>`` in all."""
    if not 0 <= keys <= STATE_KEYS_MAX:
        raise ValueError(f"state keys must be 0..{STATE_KEYS_MAX}")
    raws = []
    for i, lo in enumerate(range(0, keys, PUT_MANY_MAX)):
        items = {f"pre/{run_tag}/{k}": k for k in range(lo, min(keys, lo + PUT_MANY_MAX))}
        signer = signers[i % len(signers)]
        raws.append(
            signer.build(
                "kv",
                "put_many",
                {"items": items},
                expiry_height=expiry_height,
                nonce=NONCE_BASE + i,
            )
        )
    return raws


def preload_state(
    clients: Sequence[Client],
    raws: Sequence[bytes],
    say: Callable[[str], None] = lambda _: None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Submit ``raws`` round-robin with at most IN_FLIGHT_TXS uncommitted; return when
    every one committed, or raise PreloadError."""
    deadline_s = clock() + TIMEOUT_S
    pending: deque[str] = deque()
    done = 0
    for i, raw in enumerate(raws):
        while len(pending) >= IN_FLIGHT_TXS:
            _wait_committed(clients[0], pending.popleft(), deadline_s, clock)
            done += 1
        pending.append(_submit(clients[i % len(clients)], raw, deadline_s, clock))
        if i and i % 100 == 0:
            say(f"preload: {i} of {len(raws)} transactions submitted, {done} committed")
    while pending:
        _wait_committed(clients[0], pending.popleft(), deadline_s, clock)


def _submit(client: Client, raw: bytes, deadline_s: float, clock: Callable[[], float]) -> str:
    while True:
        try:
            return client.submit(raw)
        except ClientError as exc:
            if exc.status not in (429, 503) or clock() > deadline_s:
                raise PreloadError(f"preload transaction refused: {exc}") from None
        time.sleep(RETRY_S)


def _wait_committed(
    client: Client, tid: str, deadline_s: float, clock: Callable[[], float]
) -> None:
    try:
        doc = client.wait(tid, timeout_s=max(1.0, deadline_s - clock()))
    except ClientError as exc:
        raise PreloadError(f"preload transaction {tid[:16]}: {exc}") from None
    if doc.get("status") != "committed":
        raise PreloadError(f"preload transaction {tid[:16]} {doc.get('status')}: {doc}")
