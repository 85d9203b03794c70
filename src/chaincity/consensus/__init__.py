"""BFT consensus (Jolteon / DiemBFT v4 family) as a pure state machine.

``ConsensusCore.handle(event) -> list[Action]``: no clock, randomness, threads
or sockets inside. See docs/consensus.md.
"""

from chaincity.consensus.core import ConsensusCore, CoreConfig, Recovery, get_leader
from chaincity.consensus.rules import SafetyRules

__all__ = ["ConsensusCore", "CoreConfig", "Recovery", "SafetyRules", "get_leader"]
