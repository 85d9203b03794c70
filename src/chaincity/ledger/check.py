"""Re-verify a whole ledger: hash chain, receipts and indexes, certificates, state roots.

The state check does not trust the stored tree: it rebuilds the latest root from
the stored values alone and compares it with the stored root, then walks the
stored tree of that version: every page must be there and hash, from its own
slots, to what its parent (or the root) names.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from chaincity.codec import CodecError, decode
from chaincity.ledger.ledger import Ledger, LedgerCorruption
from chaincity.state.kv import ReadTxn
from chaincity.state.store import StateError
from chaincity.state.tree import (
    Bucket,
    Child,
    StateCorruption,
    bucket_of,
    page_hash,
    root_of_leaves,
)
from chaincity.types.block import Block, BlockHeader, block_hash
from chaincity.types.consensus import QuorumCert, verify_commit_certificate
from chaincity.types.validators import ValidatorSet

ERRORS_MAX = 100
_U64 = struct.Struct(">Q")
_LOC = struct.Struct(">QI")

# (height, header, certificate or None) -> None if valid, else the reason.
CertVerifier = Callable[[int, BlockHeader, bytes | None], str | None]


def require_cert_present(height: int, header: BlockHeader, cert: bytes | None) -> str | None:
    """The default verifier: a certificate must be stored above genesis (which the
    genesis file itself vouches for)."""
    if height == 0:
        return None
    return "commit certificate missing" if not cert else None


def commit_cert_verifier(ledger: Ledger, validators: ValidatorSet) -> CertVerifier:
    """Checks each stored certificate's signatures against ``validators``.

    A certificate stored with a block names that block or a later one of the
    same commit (the hash chain, checked separately, binds the two)."""
    suite = ledger.state.suite

    def verify(height: int, header: BlockHeader, cert: bytes | None) -> str | None:
        if height == 0:
            return None
        if not cert:
            return "commit certificate missing"
        try:
            qc = decode(cert, QuorumCert)
        except CodecError as exc:
            return f"commit certificate does not decode: {exc}"
        named = header
        if qc.data.commit_height != height:
            block = ledger.get_block(qc.data.commit_height)
            if qc.data.commit_height < height or block is None:
                return f"certificate names block {qc.data.commit_height}, not a descendant"
            named = block.header
        if not verify_commit_certificate(suite, ledger.chain_id, validators, named, qc):
            return f"signatures do not prove block {named.height} (epoch {validators.epoch})"
        return None

    return verify


@dataclass(slots=True)
class CheckReport:
    chain_id: str
    blocks: int = 0
    receipts: int = 0
    state_keys: int = 0
    state_pages: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, message: str) -> None:
        if len(self.errors) < ERRORS_MAX:
            self.errors.append(message)


def check_ledger(ledger: Ledger, verify_cert: CertVerifier = require_cert_present) -> CheckReport:
    """Every problem found (up to ERRORS_MAX), each naming its height."""
    report = CheckReport(ledger.chain_id)
    try:
        ledger.verify_startup()
    except (LedgerCorruption, StateCorruption) as exc:
        report.add(str(exc))
    headers = _check_chain(ledger, report, verify_cert)
    _check_attested_roots(ledger, headers, report)
    _check_state(ledger, report)
    return report


def _check_chain(
    ledger: Ledger, report: CheckReport, verify_cert: CertVerifier
) -> dict[int, BlockHeader]:
    headers: dict[int, BlockHeader] = {}
    suite = ledger.state.suite
    previous_hash = b""
    expected = 0
    top = ledger.height if ledger.height is not None else -1
    for height, raw in ledger.iter_blocks():
        if height > top:
            report.add(f"block at height {height} is above the recorded height {top}")
            break
        if height != expected:
            report.add(f"blocks missing from height {expected} to {height - 1}")
        try:
            block = decode(raw, Block)
        except CodecError as exc:
            report.add(f"block at height {height} does not decode: {exc}")
            expected, previous_hash = height + 1, b""
            continue
        header = block.header
        _check_header(ledger, height, header, previous_hash, report)
        this_hash = block_hash(suite, header)
        if ledger.get_height_of(this_hash) != height:
            report.add(f"hash index does not point to block at height {height}")
        reason = verify_cert(height, header, ledger.get_commit_cert(height))
        if reason is not None:
            report.add(f"certificate at height {height}: {reason}")
        report.receipts += _check_receipts(ledger, height, report)
        headers[height] = header
        report.blocks += 1
        expected, previous_hash = height + 1, this_hash
    if expected != top + 1:
        report.add(f"blocks missing from height {expected} to {top}")
    return headers


def _check_header(
    ledger: Ledger, height: int, header: BlockHeader, previous_hash: bytes, report: CheckReport
) -> None:
    if header.height != height:
        report.add(f"block stored at height {height} says height {header.height}")
    if header.chain_id != ledger.chain_id:
        report.add(f"block at height {height} names chain {header.chain_id!r}")
    if height > 0 and previous_hash and header.parent_hash != previous_hash:
        report.add(f"block at height {height} does not link to block {height - 1}")


def _check_receipts(ledger: Ledger, height: int, report: CheckReport) -> int:
    try:
        receipts = ledger.get_receipts(height)
    except LedgerCorruption as exc:
        report.add(str(exc))
        return 0
    for index, receipt in enumerate(receipts):
        if receipt.height != height or receipt.index != index:
            report.add(f"receipt {index} at height {height} names {receipt.height}/{receipt.index}")
        if ledger.get_tx_location(receipt.tx_id) != (height, index):
            report.add(f"transaction index wrong for receipt {index} at height {height}")
    return len(receipts)


def _check_attested_roots(
    ledger: Ledger, headers: dict[int, BlockHeader], report: CheckReport
) -> None:
    """A header attests the state root of an executed height: it must be ours."""
    for height, header in headers.items():
        if not header.state_root or header.exec_height not in headers:
            continue
        try:
            ours = ledger.state.root(header.exec_height)
        except (StateCorruption, StateError) as exc:
            report.add(f"state root of height {header.exec_height} unreadable: {exc}")
            continue
        if ours != header.state_root:
            report.add(
                f"block at height {height} attests a state root for height "
                f"{header.exec_height} that differs from the stored one"
            )


def _check_state(ledger: Ledger, report: CheckReport) -> None:
    state = ledger.state
    version = state.latest_version
    if version is None:
        return
    hasher = state.hasher
    with ledger.store.read() as txn:
        try:
            leaves = [
                (key_hash, hasher.value(value)) for key_hash, value in state.latest_items(txn)
            ]
        except StateCorruption as exc:
            report.add(f"state at height {version}: {exc}")
            return
    report.state_keys = len(leaves)
    rebuilt = root_of_leaves(hasher, leaves)
    if rebuilt != state.root(version):
        report.add(f"state root mismatch at height {version}: values do not give the stored root")
    with ledger.store.read() as txn:
        try:
            report.state_pages = _check_tree(ledger, txn, version)
        except StateCorruption as exc:
            report.add(f"state tree at height {version}: {exc}")


def _check_tree(ledger: Ledger, txn: ReadTxn, version: int) -> int:
    """Walk ``version``'s stored tree; returns its page count, raises on the first fault."""
    state, hasher = ledger.state, ledger.state.hasher
    root, root_page_version = state.root_ref(txn, version)
    todo = [(root_page_version, b"", root)]
    count = 0
    while todo:  # bounded: each page is visited once, and a path grows at every step
        page_version, path, expected = todo.pop()
        page = state.load_page(txn, page_version, path)
        if page_hash(hasher, page.slots) != expected:
            raise StateCorruption(
                f"page {path.hex() or 'root'} of version {page_version} does not hash "
                "to its reference"
            )
        count += 1
        for index, slot in enumerate(page.slots):
            if type(slot) is Child:
                todo.append((slot.version, path + bytes((index,)), slot.hash))
            elif (
                type(slot) is Bucket and bucket_of(hasher, slot.leaves, len(path)).hash != slot.hash
            ):
                raise StateCorruption(
                    f"a bucket in page {path.hex() or 'root'} of version {page_version} does "
                    "not hash to its reference"
                )
    return count


__all__ = ["CertVerifier", "CheckReport", "check_ledger", "require_cert_present"]
