"""Validator sets: who votes in an epoch, and what counts as a quorum."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from chaincity.codec import Tag, encode
from chaincity.crypto import CryptoSuite
from chaincity.types.primitives import U64, VALIDATORS_MAX, Name, PublicKeyBytes


class Validator(msgspec.Struct, array_like=True, frozen=True, gc=False):
    name: Name
    org: Name
    public_key: PublicKeyBytes
    power: Annotated[int, Meta(ge=1, le=1)] = 1  # equal weight; kept for future weighting


class ValidatorSet(msgspec.Struct, array_like=True, frozen=True, gc=False):
    epoch: U64
    validators: Annotated[tuple[Validator, ...], Meta(min_length=1, max_length=VALIDATORS_MAX)]

    @property
    def size(self) -> int:
        return len(self.validators)

    @property
    def max_faulty(self) -> int:
        """f: the most byzantine validators tolerated, n >= 3f + 1."""
        return (len(self.validators) - 1) // 3

    @property
    def quorum(self) -> int:
        """Signatures needed for a certificate: more than two thirds of n."""
        return 2 * len(self.validators) // 3 + 1

    def index_of(self, public_key: bytes) -> int | None:
        for i, v in enumerate(self.validators):
            if v.public_key == public_key:
                return i
        return None


def validator_set_hash(suite: CryptoSuite, vset: ValidatorSet) -> bytes:
    return suite.tagged_hash(Tag.VALIDATORS, encode(vset))
