"""Commit and epoch-change certificates, checked as a third party would."""

from __future__ import annotations

import pytest
from msgspec import structs

from chaincity.codec import CodecError, encode
from chaincity.consensus.messages import decode_message
from chaincity.types.block import BlockHeader, block_hash
from chaincity.types.consensus import (
    EpochChangeCert,
    QuorumCert,
    VoteData,
    sign_vote,
    verify_commit_certificate,
    verify_epoch_change,
    vote_signing_bytes,
)
from chaincity.types.validators import validator_set_hash

from .helpers import CHAIN, SUITE, key, make_vset

VSET = make_vset(4)
NEXT = make_vset(4, epoch=1)
HEADER = BlockHeader(CHAIN, 0, 7, 9, b"p" * 32, b"x" * 32, 5, b"s" * 32, b"r" * 32, 1, 1234)


def certificate(signers: tuple[int, ...], next_hash: bytes = b"") -> QuorumCert:
    data = VoteData(
        CHAIN,
        0,
        10,
        8,
        b"c" * 32,
        block_hash(SUITE, HEADER),
        9,
        7,
        block_hash(SUITE, HEADER),
        next_hash,
    )
    sigs = tuple(SUITE.sign(key(i), vote_signing_bytes(data)) for i in signers)
    return QuorumCert(data, signers, sigs)


def test_commit_certificate_with_a_quorum_verifies() -> None:
    assert verify_commit_certificate(SUITE, CHAIN, VSET, HEADER, certificate((0, 1, 3)))


@pytest.mark.parametrize(
    "bad",
    [
        certificate((0, 1)),  # too few signers
        certificate((0, 0, 1)),  # a signer twice
        certificate((1, 0, 3)),  # unsorted
        QuorumCert(certificate((0, 1, 2)).data, (0, 1, 3), certificate((0, 1, 2)).signatures),
    ],
)
def test_commit_certificate_rejects_bad_signatures(bad: QuorumCert) -> None:
    assert not verify_commit_certificate(SUITE, CHAIN, VSET, HEADER, bad)


def test_commit_certificate_is_bound_to_header_chain_and_epoch() -> None:
    cert = certificate((0, 1, 2))
    other = structs.replace(HEADER, state_root=b"t" * 32)
    assert not verify_commit_certificate(SUITE, CHAIN, VSET, other, cert)
    assert not verify_commit_certificate(SUITE, "other-chain", VSET, HEADER, cert)
    assert not verify_commit_certificate(SUITE, CHAIN, make_vset(4, epoch=3), HEADER, cert)


def test_epoch_change_lets_a_light_client_move_to_the_next_set() -> None:
    cert = certificate((1, 2, 3), validator_set_hash(SUITE, NEXT))
    assert verify_epoch_change(SUITE, CHAIN, VSET, EpochChangeCert(HEADER, cert, NEXT))
    # A set the old validators did not sign for is refused.
    forged = make_vset(7, epoch=1)
    assert not verify_epoch_change(SUITE, CHAIN, VSET, EpochChangeCert(HEADER, cert, forged))
    skipped = make_vset(4, epoch=2)
    assert not verify_epoch_change(SUITE, CHAIN, VSET, EpochChangeCert(HEADER, cert, skipped))


def test_messages_decode_only_from_canonical_bytes() -> None:
    data = VoteData(CHAIN, 0, 1, 1, b"h" * 32, b"p" * 32, 0, 0, b"", b"")
    vote = sign_vote(SUITE, key(0), data, 0)
    raw = encode(vote)
    assert decode_message(raw) == vote
    for bad in (raw + b"\x00", raw[:-1], b"", b"\xc1"):
        with pytest.raises(CodecError):
            decode_message(bad)
