"""Domain types and the bounds every message field is checked against on decode."""

from __future__ import annotations

from typing import Annotated, NewType

from msgspec import Meta

# Unsigned fields stop at 2**63 - 1 so that every integer fits a signed 64-bit
# slot in any language (and msgspec can check the bound while decoding).
U64_MAX = 2**63 - 1

Height = NewType("Height", int)
Round = NewType("Round", int)
Epoch = NewType("Epoch", int)
ChainId = NewType("ChainId", str)
ValidatorIndex = NewType("ValidatorIndex", int)

# Bounds (TigerBeetle style: a limit on everything).
CHAIN_ID_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$"
NAME_SIZE_MAX = 64
HASH_SIZE_MAX = 64
PUBLIC_KEY_SIZE_MAX = 65
SIGNATURE_SIZE_MAX = 72
VALIDATORS_MAX = 256
ROLES_MAX = 16
TX_ARGS_SIZE_MAX = 64 * 1024
TX_SIZE_MAX = 96 * 1024
BLOCK_TXS_MAX = 20_000
BLOCK_SIZE_MAX = 16 * 1024 * 1024
EVENTS_MAX = 64
EVENT_DATA_SIZE_MAX = 16 * 1024
ERROR_SIZE_MAX = 512
RETURN_SIZE_MAX = 64 * 1024

U64 = Annotated[int, Meta(ge=0, le=U64_MAX)]
U32 = Annotated[int, Meta(ge=0, le=2**32 - 1)]
U16 = Annotated[int, Meta(ge=0, le=2**16 - 1)]
ChainIdField = Annotated[str, Meta(pattern=CHAIN_ID_PATTERN)]
Name = Annotated[str, Meta(min_length=1, max_length=NAME_SIZE_MAX)]
HashBytes = Annotated[bytes, Meta(max_length=HASH_SIZE_MAX)]
PublicKeyBytes = Annotated[bytes, Meta(max_length=PUBLIC_KEY_SIZE_MAX)]
SignatureBytes = Annotated[bytes, Meta(max_length=SIGNATURE_SIZE_MAX)]
