"""Deterministic simulator for the consensus core (``python -m chaincity.sim``).

One seed decides every delay, drop, duplicate, partition, crash and byzantine
act; checkers outside the code under test judge safety and liveness.
"""

from chaincity.sim.config import SimConfig, get_config
from chaincity.sim.runner import SimResult, run_seed

__all__ = ["SimConfig", "SimResult", "get_config", "run_seed"]
