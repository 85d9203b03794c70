"""Simulator configurations: what may go wrong, and how much of it.

A configuration names the fault classes that are switched on; the seed then
picks every concrete fault (which message drops, when a partition forms,
which validator crashes and what a byzantine validator does).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

BYZANTINE_BEHAVIOURS = (
    "equivocate",  # as leader, send different blocks for one round to different peers
    "fork",  # as leader after a timeout, extend an older QC than the highest one
    "selective",  # as leader, send the proposal to one peer only
    "trim_qc",  # as leader, carry a QC with fewer signatures than a quorum
    "double_vote",  # sign two different votes in one round
    "blind_vote",  # vote for a block hash nobody proposed
    "withhold",  # never send votes
    "replay",  # resend old messages it received
    "malformed",  # send bytes that are not a message
    "bad_sig",  # send copies of its messages with a corrupted signature
)


@dataclass(frozen=True)
class SimConfig:
    name: str = "normal"
    n: int = 4
    byzantine: int = 0  # at most f = (n - 1) // 3
    behaviours: tuple[str, ...] = ()  # each byzantine validator picks some of these
    delay_ms_min: int = 2
    delay_ms_max: int = 30
    drop_rate: float = 0.0  # before healing
    duplicate_rate: float = 0.0
    partitions: bool = False
    isolate_leader_rate: float = 0.0  # chance a leader is cut off as it is about to propose
    crashes: bool = False
    epoch_every_heights: int = 0  # 0: the validator set never changes
    round_timeout_ms: int = 300
    exec_delay_ms_max: int = 40
    faulty_phase_ms: int = 3_000  # faults happen in [0, faulty_phase_ms); then the network heals
    liveness_commits: int = 3  # new heights every honest validator must commit after healing
    liveness_window_ms: int = 30_000

    def with_n(self, n: int) -> SimConfig:
        f = (n - 1) // 3
        byz = min(self.byzantine, f) if self.byzantine >= 0 else f
        return replace(self, n=n, byzantine=byz, name=f"{self.name.split('@')[0]}@{n}")


ALL_FAULTS = SimConfig(
    name="all",
    byzantine=-1,  # -1: as many as tolerated
    behaviours=BYZANTINE_BEHAVIOURS,
    drop_rate=0.1,
    duplicate_rate=0.05,
    partitions=True,
    isolate_leader_rate=0.05,
    crashes=True,
    epoch_every_heights=12,
)

PRESETS: dict[str, SimConfig] = {
    "normal": SimConfig(name="normal"),
    "lossy": SimConfig(name="lossy", drop_rate=0.2, duplicate_rate=0.1, delay_ms_max=150),
    "partition": SimConfig(
        name="partition", partitions=True, isolate_leader_rate=0.1, drop_rate=0.05
    ),
    "crash": SimConfig(name="crash", crashes=True, drop_rate=0.05),
    "byzantine": SimConfig(name="byzantine", byzantine=-1, behaviours=BYZANTINE_BEHAVIOURS),
    "epochs": SimConfig(name="epochs", epoch_every_heights=6, crashes=True, drop_rate=0.05),
    "all": ALL_FAULTS,
}


def get_config(name: str) -> SimConfig:
    """``preset`` or ``preset@n`` (e.g. ``all@7``)."""
    base, _, n_text = name.partition("@")
    if base not in PRESETS:
        raise ValueError(f"unknown configuration {base!r} (known: {', '.join(PRESETS)})")
    n = int(n_text) if n_text else 4
    if n < 1 or n > 64:
        raise ValueError("n must be 1..64")
    return PRESETS[base].with_n(n)
