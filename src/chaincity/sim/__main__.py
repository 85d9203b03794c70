"""``python -m chaincity.sim``: run seeds of the deterministic consensus simulator.

python -m chaincity.sim --config all@7 --seed 42     # replay one seed exactly
python -m chaincity.sim --seeds 1000                 # soak: every configuration
"""

from __future__ import annotations

import argparse
import sys
import time

from chaincity.sim.config import PRESETS, get_config
from chaincity.sim.runner import SimResult, run_seed

SIZES = (1, 4, 7, 10)


def summarize(name: str, results: list[SimResult]) -> str:
    lat = [x for r in results for x in r.latencies]
    live = [r.liveness_ms for r in results if r.liveness_ms is not None]
    mean_ms = sum(ms for ms, _ in lat) / len(lat) if lat else 0.0
    mean_rounds = sum(rd for _, rd in lat) / len(lat) if lat else 0.0
    worst_live = max(live) if live else 0
    failed = sum(1 for r in results if not r.ok)
    return (
        f"{name:14s} seeds={len(results):5d} failed={failed:3d} blocks={len(lat):7d} "
        f"commit_latency_ms={mean_ms:7.1f} commit_latency_rounds={mean_rounds:5.2f} "
        f"worst_heal_to_commit_ms={worst_live}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m chaincity.sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--config",
        action="append",
        help=f"preset[@n] (presets: {', '.join(PRESETS)}); default: all at n=1,4,7,10",
    )
    ap.add_argument("--seed", type=int, help="run this one seed")
    ap.add_argument("--seeds", type=int, default=20, help="seeds per configuration")
    ap.add_argument("--first-seed", type=int, default=0)
    args = ap.parse_args(argv)
    names = args.config or [f"{p}@{n}" for p in PRESETS for n in SIZES]
    try:
        configs = [get_config(name) for name in names]
    except ValueError as exc:
        ap.error(str(exc))
    seeds = (
        [args.seed]
        if args.seed is not None
        else list(range(args.first_seed, args.first_seed + args.seeds))
    )
    failures = 0
    started = time.perf_counter()
    for config in configs:
        results = []
        for seed in seeds:
            r = run_seed(config, seed)
            results.append(r)
            if not r.ok:
                failures += 1
                print(f"FAIL {config.name} seed {seed}:", file=sys.stderr)
                for problem in r.problems():
                    print(f"  {problem}", file=sys.stderr)
                print(f"  replay: {r.replay_command()}", file=sys.stderr)
        print(summarize(config.name, results), flush=True)
    elapsed = time.perf_counter() - started
    print(f"{len(configs) * len(seeds)} runs, {failures} failed, {elapsed:.1f} s wall")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
