"""Transaction admission and the pool the leader fills proposals from."""

from chaincity.mempool.pool import AdmitError, Mempool, MempoolParams, Reject

__all__ = ["AdmitError", "Mempool", "MempoolParams", "Reject"]
