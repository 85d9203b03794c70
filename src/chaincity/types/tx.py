"""Transactions.

A transaction is a body signed by its sender. The sender's member certificate
travels inside the body (the mempool checks it against the organization's CA,
with a cache keyed by the certificate's digest), so any node can admit a
transaction with nothing but the genesis. The transaction id is the tagged
hash of the body's canonical bytes: two signatures over one body are one
transaction, and a transaction id is never committed twice.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from chaincity.codec import Tag, encode, tagged
from chaincity.crypto import CryptoSuite
from chaincity.types.identity import MemberCert
from chaincity.types.primitives import (
    TX_ARGS_SIZE_MAX,
    U64,
    ChainIdField,
    Name,
    SignatureBytes,
)

ArgsBytes = Annotated[bytes, Meta(max_length=TX_ARGS_SIZE_MAX)]


class TxBody(msgspec.Struct, array_like=True, frozen=True, gc=False):
    chain_id: ChainIdField
    sender: MemberCert
    nonce: U64
    contract: Name
    method: Name
    args: ArgsBytes  # codec.encode_value of the arguments
    expiry_height: U64  # the last height at which this transaction may commit


class Transaction(msgspec.Struct, array_like=True, frozen=True, gc=False):
    body: TxBody
    signature: SignatureBytes


def tx_signing_bytes(body: TxBody) -> bytes:
    return tagged(Tag.TX, encode(body))


def tx_id(suite: CryptoSuite, body: TxBody) -> bytes:
    return suite.tagged_hash(Tag.TX, encode(body))


def sign_tx(suite: CryptoSuite, private_key: bytes, body: TxBody) -> Transaction:
    return Transaction(body, suite.sign(private_key, tx_signing_bytes(body)))


def verify_tx_signature(suite: CryptoSuite, tx: Transaction) -> bool:
    return suite.verify(tx.body.sender.body.public_key, tx_signing_bytes(tx.body), tx.signature)
