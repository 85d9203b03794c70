"""The block store: blocks, receipts, indexes, certificates and state, committed atomically."""

from __future__ import annotations

from chaincity.ledger.check import CertVerifier, CheckReport, check_ledger, require_cert_present
from chaincity.ledger.ledger import (
    Ledger,
    LedgerCorruption,
    LedgerError,
    list_chains,
    open_ledger,
    open_store,
)

__all__ = [
    "CertVerifier",
    "CheckReport",
    "Ledger",
    "LedgerCorruption",
    "LedgerError",
    "check_ledger",
    "list_chains",
    "open_ledger",
    "open_store",
    "require_cert_present",
]
