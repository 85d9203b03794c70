"""Build proof bundles from a node's ledger (the checking side is chaincity.proofs)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from chaincity.api.render import encoded_value_to_json
from chaincity.proofs import BUNDLE_TYPE, HEADERS_MAX, ProofBundle, encode_bundle
from chaincity.types.block import BlockHeader

if TYPE_CHECKING:
    from chaincity.node.queries import ChainQueries


class ProofUnavailable(Exception):
    """The ledger cannot prove this yet (e.g. nothing attested since genesis)."""


def build_bundle(rt: ChainQueries, contract: str, key: bytes) -> dict[str, Any]:
    store = rt.store
    tip = store.tip_height()
    cert = store.commit_cert(tip)
    attesting = store.header(tip)
    if cert is None or attesting is None:
        return {"error": "no certified block yet; try again after the first commit"}
    certified = cert.data.commit_height
    headers: list[BlockHeader] = []
    for h in range(tip, min(certified, tip + HEADERS_MAX - 1) + 1):
        header = store.header(h)
        if header is None:
            return {"error": f"header {h} missing"}
        headers.append(header)
    if headers[-1].height != certified:
        return {"error": "certificate names a block this node has not stored yet"}
    version = attesting.exec_height
    value = store.get_state(contract, key, version)
    proof = store.prove_state(contract, key, version)
    bundle = ProofBundle(
        chain_id=rt.chain_id,
        suite=rt.suite.name,
        contract=contract,
        key=key,
        value=value,
        state_proof=proof,
        headers=tuple(headers),
        cert=cert,
        validators=rt.deps.genesis.validators,
        epoch_changes=(),
    )
    return {
        "type": BUNDLE_TYPE,
        "chain_id": rt.chain_id,
        "contract": contract,
        "key": key.decode(errors="replace"),
        "state_height": version,
        "certified_height": certified,
        "value": None if value is None else encoded_value_to_json(value),
        "bundle": base64.b64encode(encode_bundle(bundle)).decode(),
    }
