"""Transactions, blocks and validator sets: ids, signatures, bounds."""

from __future__ import annotations

import msgspec
import pytest

from chaincity.codec import CodecError, decode, encode, encode_value
from chaincity.crypto import get_suite
from chaincity.types.block import Block, BlockHeader, block_hash, payload_hash
from chaincity.types.identity import CertBody, issue_cert
from chaincity.types.tx import Transaction, TxBody, sign_tx, tx_id, verify_tx_signature
from chaincity.types.validators import Validator, ValidatorSet

SUITE = get_suite("ed25519-sha256")
CA_KEY = bytes(range(32))
MEMBER_KEY = bytes(range(1, 33))


def make_body(chain_id: str = "main", nonce: int = 1) -> TxBody:
    cert = issue_cert(
        SUITE,
        CA_KEY,
        CertBody("main", "alice", "bank", ("member",), SUITE.public_key(MEMBER_KEY), 0, 10**13, 7),
    )
    return TxBody(chain_id, cert, nonce, "notary", "record", encode_value(["digest"]), 100)


def test_signed_transaction_round_trips_and_verifies() -> None:
    tx = sign_tx(SUITE, MEMBER_KEY, make_body())
    decoded = decode(encode(tx), Transaction)
    assert decoded == tx
    assert verify_tx_signature(SUITE, decoded)


def test_signature_does_not_carry_to_another_chain_or_nonce() -> None:
    tx = sign_tx(SUITE, MEMBER_KEY, make_body())
    for other in (make_body(chain_id="energy"), make_body(nonce=2)):
        assert not verify_tx_signature(SUITE, Transaction(other, tx.signature))


def test_tx_id_ignores_signature_and_changes_with_body() -> None:
    body = make_body()
    assert tx_id(SUITE, body) == tx_id(SUITE, make_body())
    assert tx_id(SUITE, body) != tx_id(SUITE, make_body(nonce=2))
    assert len(tx_id(SUITE, body)) == 32


def test_bad_chain_id_is_rejected_on_decode() -> None:
    tx = sign_tx(SUITE, MEMBER_KEY, make_body(chain_id="Main Chain"))
    with pytest.raises(CodecError):
        decode(encode(tx), Transaction)


def header(height: int, parent: bytes) -> BlockHeader:
    return BlockHeader("main", 0, height, height, parent, b"\x00" * 32, 0, b"", b"", 0, 1000)


def test_block_hash_commits_to_every_header_field() -> None:
    base = header(1, b"\x11" * 32)
    hashes = {block_hash(SUITE, base)}
    for field, value in [("height", 2), ("round", 9), ("parent_hash", b"\x12" * 32)]:
        changed = msgspec.structs.replace(base, **{field: value})
        hashes.add(block_hash(SUITE, changed))
    assert len(hashes) == 4


def test_block_round_trip_and_payload_hash_order() -> None:
    block = Block(header(1, b""), (b"tx-a", b"tx-b"))
    assert decode(encode(block), Block) == block
    assert payload_hash(SUITE, [b"a" * 32, b"b" * 32]) != payload_hash(
        SUITE, [b"b" * 32, b"a" * 32]
    )


@pytest.mark.parametrize(("n", "f", "quorum"), [(1, 0, 1), (4, 1, 3), (7, 2, 5), (10, 3, 7)])
def test_quorum_is_more_than_two_thirds(n: int, f: int, quorum: int) -> None:
    vset = ValidatorSet(0, tuple(Validator(f"v{i}", "org", bytes([i]) * 32) for i in range(n)))
    assert vset.max_faulty == f
    assert vset.quorum == quorum
    assert 3 * vset.quorum > 2 * n
    assert vset.index_of(bytes([n - 1]) * 32) == n - 1
    assert vset.index_of(b"\xff" * 32) is None
