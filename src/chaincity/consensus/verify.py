"""Signature checks for consensus messages, each distinct signature verified once.

Verification dominates the cost of consensus in Python, and the same vote
reaches a validator inside many certificates; results are cached by the exact
(public key, message, signature) triple, in a bounded table. The cache may be
shared between validators of one process (it holds facts, not opinions).
"""

from __future__ import annotations

from chaincity.codec import encode
from chaincity.crypto import CryptoSuite
from chaincity.types.consensus import (
    QuorumCert,
    TimeoutCert,
    TimeoutData,
    timeout_signing_bytes,
    vote_signing_bytes,
)
from chaincity.types.validators import ValidatorSet

CACHE_ENTRIES_MAX = 65_536


class SignatureCache:
    def __init__(self, suite: CryptoSuite, entries_max: int = CACHE_ENTRIES_MAX) -> None:
        self.suite = suite
        self.entries_max = entries_max
        self._known: dict[tuple[bytes, bytes, bytes], bool] = {}
        self.verified_count = 0

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        key = (public_key, message, signature)
        ok = self._known.get(key)
        if ok is None:
            ok = self.suite.verify(public_key, message, signature)
            self.verified_count += 1
            if len(self._known) >= self.entries_max:
                # Dropping everything is crude but bounded and rare.
                self._known.clear()
            self._known[key] = ok
        return ok


def is_valid_signer_list(vset: ValidatorSet, signers: tuple[int, ...], quorum: int) -> bool:
    if len(signers) < quorum or not signers:
        return False
    return list(signers) == sorted(set(signers)) and signers[-1] < vset.size


def is_valid_qc(cache: SignatureCache, vset: ValidatorSet, qc: QuorumCert, quorum: int) -> bool:
    """Signatures only; chain id, epoch and the round-0 root are the caller's checks."""
    if len(qc.signers) != len(qc.signatures):
        return False
    if not is_valid_signer_list(vset, qc.signers, quorum):
        return False
    message = vote_signing_bytes(qc.data)
    return all(
        cache.verify(vset.validators[i].public_key, message, sig)
        for i, sig in zip(qc.signers, qc.signatures, strict=True)
    )


def is_valid_tc(cache: SignatureCache, vset: ValidatorSet, tc: TimeoutCert, quorum: int) -> bool:
    n = len(tc.signers)
    if n != len(tc.signatures) or n != len(tc.high_qc_rounds):
        return False
    if not is_valid_signer_list(vset, tc.signers, quorum):
        return False
    for i, hqr, sig in zip(tc.signers, tc.high_qc_rounds, tc.signatures, strict=True):
        if hqr >= tc.round:
            return False
        data = TimeoutData(tc.chain_id, tc.epoch, tc.round, hqr)
        if not cache.verify(vset.validators[i].public_key, timeout_signing_bytes(data), sig):
            return False
    return True


def qc_key(qc: QuorumCert) -> bytes:
    return encode(qc)
