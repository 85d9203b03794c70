"""Pre-signed transactions from many distinct members, made before the clock starts.

Senders get fresh keys and member certificates issued by the organizations'
CAs in the network directory, round-robin over the organizations, so the
load looks like many clerks at many organizations rather than one hot key.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaincity.client.signer import Signer
from chaincity.codec import decode
from chaincity.crypto import CryptoSuite, get_suite
from chaincity.crypto.keyfile import generate_key_pair
from chaincity.genesis.issue import issue_member_cert
from chaincity.genesis.model import Genesis
from chaincity.types.identity import ROLE_MEMBER
from chaincity.types.tx import Transaction, verify_tx_signature

WORKLOADS = ("notary", "kv")
SENDERS_MAX = 10_000
TXS_MAX = 1_000_000
CERT_DAYS = 2
VERIFY_SAMPLE_TXS = 64
VERIFY_PASSES_MAX = 1_000_000
VERIFY_ROUNDS = 5
VERIFY_ROUNDS_MAX = 100


@dataclass(frozen=True, slots=True)
class Workload:
    contract: str
    method: str


_WORKLOADS = {"notary": Workload("notary", "record"), "kv": Workload("kv", "put")}


def get_workload(name: str) -> Workload:
    try:
        return _WORKLOADS[name]
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}") from None


def compute_args(workload: Workload, run_tag: str, index: int) -> dict[str, Any]:
    """Arguments of transaction ``index``: distinct per transaction, so none fails as a repeat."""
    seed = f"{run_tag}:{index}".encode()
    if workload.contract == "notary":
        return {"digest": hashlib.sha256(seed).hexdigest()}
    return {"key": f"bench/{run_tag}/{index}", "value": hashlib.sha256(seed).digest()}


def make_signers(root: Path, genesis: Genesis, senders: int, now_ms: int) -> list[Signer]:
    """``senders`` new members, each with a key and a certificate from an org's CA."""
    if not 1 <= senders <= SENDERS_MAX:
        raise ValueError(f"senders must be 1..{SENDERS_MAX}")
    orgs = [org.name for org in genesis.orgs]
    suite = get_suite(genesis.suite)
    signers = []
    for i in range(senders):
        org = orgs[i % len(orgs)]
        key = generate_key_pair(suite)
        subject = f"bench-{i}"
        cert, _ = issue_member_cert(
            root, org, subject, (ROLE_MEMBER,), key.public_key, now_ms, CERT_DAYS
        )
        signers.append(Signer(key, cert, genesis.network_id))
    return signers


def presign(
    signers: Sequence[Signer],
    workload: Workload,
    txs: int,
    expiry_height: int,
    run_tag: str,
) -> list[bytes]:
    """Canonical bytes of ``txs`` signed transactions, senders taken round-robin."""
    if not 1 <= txs <= TXS_MAX:
        raise ValueError(f"txs must be 1..{TXS_MAX}")
    if not signers:
        raise ValueError("no signers")
    return [
        signers[i % len(signers)].build(
            workload.contract,
            workload.method,
            compute_args(workload, run_tag, i),
            expiry_height=expiry_height,
            nonce=i,
        )
        for i in range(txs)
    ]


def measure_verify_per_s(
    suite: CryptoSuite,
    raws: Sequence[bytes],
    seconds: float,
    clock: Callable[[], float] = time.perf_counter,
    rounds: int = VERIFY_ROUNDS,
) -> float:
    """Single-core signature verifications per second on real transactions.

    The best of a few short rounds: on a shared machine other work can only
    slow a round down, so the fastest is the closest to what one core can do.
    """
    sample = [decode(raw, Transaction) for raw in raws[:VERIFY_SAMPLE_TXS]]
    if not sample:
        raise ValueError("no transactions to verify")
    if not 1 <= rounds <= VERIFY_ROUNDS_MAX:
        raise ValueError(f"rounds must be 1..{VERIFY_ROUNDS_MAX}")
    return max(_verify_round(suite, sample, seconds / rounds, clock) for _ in range(rounds))


def _verify_round(
    suite: CryptoSuite, sample: list[Transaction], seconds: float, clock: Callable[[], float]
) -> float:
    done = 0
    start = clock()
    elapsed = 0.0
    while elapsed < seconds and done < VERIFY_PASSES_MAX * len(sample):
        for tx in sample:
            if not verify_tx_signature(suite, tx):
                raise ValueError("a pre-signed transaction does not verify")
        done += len(sample)
        elapsed = clock() - start
    return done / elapsed if elapsed > 0 else 0.0
