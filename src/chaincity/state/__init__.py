"""Authenticated key-value state: versions, copy-on-write overlays and Merkle proofs."""

from __future__ import annotations

from chaincity.state.kv import KVStore, LmdbConfig, LmdbStore, StorageError
from chaincity.state.overlay import Namespace, Overlay, namespaced_key
from chaincity.state.store import (
    KEY_SIZE_MAX,
    VALUE_SIZE_MAX,
    AuthenticatedState,
    StateConflict,
    StateError,
    StateUpdate,
    StateVersionError,
)
from chaincity.state.tree import (
    StateCorruption,
    StateProof,
    compute_root,
    decode_proof,
    encode_proof,
    verify_state_proof,
)

__all__ = [
    "KEY_SIZE_MAX",
    "VALUE_SIZE_MAX",
    "AuthenticatedState",
    "KVStore",
    "LmdbConfig",
    "LmdbStore",
    "Namespace",
    "Overlay",
    "StateConflict",
    "StateCorruption",
    "StateError",
    "StateProof",
    "StateUpdate",
    "StateVersionError",
    "StorageError",
    "compute_root",
    "decode_proof",
    "encode_proof",
    "namespaced_key",
    "verify_state_proof",
]
