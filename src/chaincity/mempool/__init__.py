"""Transaction admission and the pool the leader fills proposals from."""

from chaincity.mempool.pool import (
    AdmitError,
    Candidate,
    Candidates,
    Mempool,
    MempoolParams,
    Reject,
)
from chaincity.mempool.verify import (
    ProcessChecker,
    SignatureChecker,
    SignatureJob,
    ThreadedChecker,
    verify_jobs,
)

__all__ = [
    "AdmitError",
    "Candidate",
    "Candidates",
    "Mempool",
    "MempoolParams",
    "ProcessChecker",
    "Reject",
    "SignatureChecker",
    "SignatureJob",
    "ThreadedChecker",
    "verify_jobs",
]
