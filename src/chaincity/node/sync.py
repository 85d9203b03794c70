"""Catch-up: a node that is behind fetches committed blocks with their certificates.

Every validator broadcasts its committed height now and then (``tick``). A node
that learns a peer is ahead by more than ``LAG_BLOCKS`` asks that peer for the
next blocks. It accepts a response only after checking, against the validator
set it trusts, that the blocks continue its chain (heights, parent hashes,
payload hashes) and that a valid commit certificate names the last block it
keeps; it then executes and stores them like blocks committed live, and
restarts its consensus core on the new tip.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chaincity.codec import CodecError, decode, encode
from chaincity.node.wire import (
    SYNC_BLOCKS_MAX,
    SYNC_RESPONSE_BYTES_MAX,
    Kind,
    SyncItem,
    SyncRequest,
    SyncResponse,
    SyncStatus,
)
from chaincity.types.block import Block, block_hash
from chaincity.types.consensus import QuorumCert, verify_commit_certificate

if TYPE_CHECKING:
    from chaincity.node.chain import ChainRuntime

log = logging.getLogger("chaincity.sync")

LAG_BLOCKS = 2
REQUEST_TIMEOUT_TICKS = 6


class SyncTracker:
    def __init__(self, runtime: ChainRuntime) -> None:
        self._rt = runtime
        self.peer_heights: dict[int, int] = {}
        self._in_flight: tuple[int, int] | None = None  # (peer, ticks waited)
        self.synced_blocks = 0

    def tick(self) -> None:
        """Announce our height; retry or start a catch-up if we are behind."""
        rt = self._rt
        epoch = rt.core.vset.epoch if rt.core else 0
        status = SyncStatus(rt.store.tip_height(), epoch)
        rt.deps.outbox.broadcast(Kind.SYNC_STATUS, encode(status))
        if self._in_flight is not None:
            peer, waited = self._in_flight
            self._in_flight = (peer, waited + 1) if waited < REQUEST_TIMEOUT_TICKS else None
        self._maybe_request()

    def on_message(self, sender: int, kind: Kind, payload: bytes) -> None:
        try:
            if kind is Kind.SYNC_STATUS:
                st = decode(payload, SyncStatus)
                self.peer_heights[sender] = st.height
                self._maybe_request()
            elif kind is Kind.SYNC_REQUEST:
                self._serve(sender, decode(payload, SyncRequest))
            elif kind is Kind.SYNC_RESPONSE:
                self._on_response(sender, decode(payload, SyncResponse))
        except CodecError as exc:
            log.warning("bad %s from validator %d: %s", kind.name, sender, exc)
            self._rt.deps.metrics.inc("chaincity_bad_messages_total", chain=self._rt.chain_id)

    def _maybe_request(self) -> None:
        if self._in_flight is not None or not self.peer_heights:
            return
        tip = self._rt.store.tip_height()
        peer, height = max(self.peer_heights.items(), key=lambda kv: (kv[1], -kv[0]))
        if height <= tip + LAG_BLOCKS:
            return
        count = min(SYNC_BLOCKS_MAX, height - tip)
        self._rt.deps.outbox.send(peer, Kind.SYNC_REQUEST, encode(SyncRequest(tip + 1, count)))
        self._in_flight = (peer, 0)

    def _serve(self, sender: int, req: SyncRequest) -> None:
        store = self._rt.store
        items: list[SyncItem] = []
        size = 0
        for h in range(req.from_height, min(req.from_height + req.count, store.tip_height() + 1)):
            block, cert = store.block(h), store.commit_cert(h)
            if block is None:
                break
            item = SyncItem(encode(block), b"" if cert is None else encode(cert))
            size += len(item.block) + len(item.cert)
            if items and size > SYNC_RESPONSE_BYTES_MAX:
                break
            items.append(item)
        self._rt.deps.outbox.send(sender, Kind.SYNC_RESPONSE, encode(SyncResponse(tuple(items))))

    def _on_response(self, sender: int, resp: SyncResponse) -> None:
        if self._in_flight is None or self._in_flight[0] != sender:
            return  # unsolicited or late
        self._in_flight = None
        blocks, cert = self._verified_prefix(resp)
        if not blocks or cert is None:
            log.info("catch-up response from validator %d held nothing usable", sender)
            return
        for block in blocks:
            if self._rt.apply_block(block, cert) is None:
                return
            self.synced_blocks += 1
        log.info("caught up to height %d from validator %d", blocks[-1].header.height, sender)
        self._rt.restart_core()
        self._maybe_request()

    def _verified_prefix(self, resp: SyncResponse) -> tuple[list[Block], QuorumCert | None]:
        """The longest prefix of the response that continues our chain and ends
        in a block named by a valid commit certificate."""
        rt = self._rt
        suite, vset = rt.suite, rt.deps.genesis.validators
        tip = rt.store.tip_height()
        prev = rt.store.header(tip)
        if prev is None:
            return [], None
        prev_hash = block_hash(suite, prev)
        chain: list[Block] = []
        best: tuple[int, QuorumCert] | None = None
        for i, item in enumerate(resp.items):
            try:
                block = decode(item.block, Block)
                cert = decode(item.cert, QuorumCert) if item.cert else None
            except CodecError:
                break
            h = block.header
            if (
                h.chain_id != rt.chain_id
                or h.height != tip + 1 + i
                or h.parent_hash != prev_hash
                or h.payload_hash != rt.payload_hash(block.txs)
            ):
                break
            chain.append(block)
            prev_hash = block_hash(suite, h)
            if cert is not None and verify_commit_certificate(suite, rt.chain_id, vset, h, cert):
                best = (i, cert)
        if best is None:
            return [], None
        return chain[: best[0] + 1], best[1]
