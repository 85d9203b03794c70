"""The simulator: many seeds stay safe and live, and planted bugs get caught."""

from __future__ import annotations

import dataclasses

import pytest

from chaincity.consensus.rules import SafetyRules
from chaincity.sim.__main__ import main
from chaincity.sim.config import PRESETS, SimConfig, get_config
from chaincity.sim.runner import SimResult, run_seed
from chaincity.sim.world import RulesFactory

from .planted import ForgetPersistRules, SkipLockRules, VoteTwiceRules, WeakQuorumRules

SIZES = (1, 4, 7, 10)
SEEDS_PER_CONFIG = 12  # 7 presets x 4 sizes x 12 = 336 runs in CI


@pytest.mark.parametrize("name", [f"{p}@{n}" for p in PRESETS for n in SIZES])
def test_seeds_are_safe_and_live(name: str) -> None:
    config = get_config(name)
    for seed in range(SEEDS_PER_CONFIG):
        result = run_seed(config, seed)
        assert result.ok, f"{result.problems()}; replay: {result.replay_command()}"
        assert result.height > 0


def test_one_seed_replays_exactly() -> None:
    config = get_config("all@7")
    a, b = run_seed(config, 3), run_seed(config, 3)
    assert (a.height, a.sim_ms, a.latencies, a.stats) == (b.height, b.sim_ms, b.latencies, b.stats)
    c = run_seed(config, 4)
    assert (c.sim_ms, c.latencies) != (a.sim_ms, a.latencies)


def _caught(config_name: str, behaviours: tuple[str, ...], rules: RulesFactory, budget: int) -> int:
    config = get_config(config_name)
    if behaviours:
        config = dataclasses.replace(config, behaviours=behaviours)
    for seed in range(budget):
        if run_seed(config, seed, rules).violations:
            return seed
    raise AssertionError(f"planted bug not caught in {budget} seeds of {config_name}")


def test_forgetting_to_persist_before_voting_is_caught() -> None:
    _caught("crash@4", (), lambda i: ForgetPersistRules(), budget=3)


def test_accepting_a_qc_with_too_few_signatures_is_caught() -> None:
    _caught("byzantine@4", ("trim_qc",), lambda i: WeakQuorumRules(), budget=10)


def test_skipping_the_lock_after_a_timeout_is_caught() -> None:
    # Needs a leader cut off right after it formed a QC (so it alone commits),
    # then a byzantine leader that forks below that QC after the timeout.
    config = dataclasses.replace(
        get_config("byzantine@7"), behaviours=("fork",), isolate_leader_rate=0.3
    )
    for seed in range(40):
        result = run_seed(config, seed, lambda i: SkipLockRules())
        if any("another honest node committed" in v for v in result.violations):
            return
    raise AssertionError("skipping the lock was not caught in 40 seeds")


def test_voting_twice_in_a_round_is_caught() -> None:
    _caught("byzantine@4", ("equivocate",), lambda i: VoteTwiceRules(), budget=10)


def test_a_bug_in_one_validator_only_is_caught() -> None:
    # Only validator 0 is broken; the others keep the rules.
    def rules(i: int) -> SafetyRules:
        return ForgetPersistRules() if i == 0 else SafetyRules()

    _caught("normal@4", (), rules, budget=3)


def test_cli_replays_a_seed_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", "byzantine@4", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "byzantine@4" in out and "1 runs, 0 failed" in out


def test_cli_rejects_unknown_configuration() -> None:
    with pytest.raises(SystemExit):
        main(["--config", "nonsense"])


def test_cli_prints_the_replay_command_of_a_failing_seed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import chaincity.sim.__main__ as cli

    def broken(config: SimConfig, seed: int) -> SimResult:
        result = run_seed(config, seed, lambda i: ForgetPersistRules())
        assert result.violations
        return result

    monkeypatch.setattr(cli, "run_seed", broken)
    assert cli.main(["--config", "normal@4", "--seed", "7"]) == 1
    err = capsys.readouterr().err
    assert "FAIL normal@4 seed 7" in err
    assert "python -m chaincity.sim --config normal@4 --seed 7" in err
