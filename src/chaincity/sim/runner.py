"""Run one seed of one configuration and report what the checkers found."""

from __future__ import annotations

import traceback
from collections import Counter
from dataclasses import dataclass, field

from chaincity.sim.config import SimConfig
from chaincity.sim.world import RulesFactory, World


@dataclass
class SimResult:
    config: str
    seed: int
    violations: list[str]
    liveness_ms: int | None  # from healing to every honest validator committing again
    height: int  # highest committed height among honest validators
    sim_ms: int
    latencies: list[tuple[int, int]] = field(default_factory=list)  # (ms, rounds)
    stats: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.violations and self.liveness_ms is not None

    def problems(self) -> list[str]:
        out = list(self.violations)
        if self.liveness_ms is None:
            out.append(f"liveness: no {self.height} -> +k commits within the window after healing")
        return out

    def replay_command(self) -> str:
        return f"python -m chaincity.sim --config {self.config} --seed {self.seed}"


def run_seed(config: SimConfig, seed: int, rules_factory: RulesFactory | None = None) -> SimResult:
    world = World(config, seed, rules_factory)
    try:
        liveness_ms, height = world.run()
    except Exception as exc:  # a crash of the code under test is a finding, not an abort
        world.checkers.fail(f"t={world.now_ms} exception: {exc!r}\n{traceback.format_exc()}")
        liveness_ms, height = None, 0
    stats: Counter[str] = Counter(world.stats)
    for node in world.nodes:
        if node.core is not None and node.index not in world.byzantine:
            stats.update(node.core.stats)
    stats["signatures_verified"] = world.cache.verified_count
    stats["events"] = world.events_run
    return SimResult(
        config.name,
        seed,
        list(world.checkers.violations),
        liveness_ms,
        height,
        world.now_ms,
        world.latencies,
        stats,
    )
