"""``python -m kraft.sim``: run (or replay) one simulation, or search many seeds.

    python -m kraft.sim --seed 7 --voters 3 --observers 1 --schedule '400:crash:leader'
    python -m kraft.sim --search 500 --voters 5        # seeds 0..499, random schedules

Exit status 0 when every run holds its invariants and converges, 1 otherwise (the failing
run's replay line is printed).
"""

from __future__ import annotations

import argparse
import random
import sys

from .scenario import CRASH_POINT_MESSAGES, FAULT_KINDS, Fault, SimParams, SimulationFailure, parse_schedule, run


def random_schedule(rng: random.Random, node_count: int, steps: int) -> tuple[Fault, ...]:
    """A schedule as the long search draws them (the tests draw theirs with hypothesis)."""
    faults = []
    for _ in range(steps):
        kind = rng.choice(FAULT_KINDS)
        argument = ""
        if kind in ("crash", "shutdown", "isolate"):
            argument = rng.choice(["leader", str(rng.randrange(node_count))])
        elif kind == "restart":
            argument = rng.choice(["all", str(rng.randrange(node_count))])
        elif kind == "oneway":
            argument = f"{rng.randrange(node_count)}.{rng.randrange(node_count)}"
        elif kind == "crashpoint":
            argument = f"{rng.choice(CRASH_POINT_MESSAGES)}/{rng.choice([0.05, 0.3])}/{rng.choice([100, 1000])}"
        elif kind == "chaos":
            argument = f"{rng.choice([50, 300, 1000])}/{rng.choice([0, 50, 2000])}"
        elif kind == "net":
            argument = f"{rng.choice([0, 0.05, 0.2])}/{rng.choice([0, 0.1])}/{rng.choice([5, 50, 400])}"
        faults.append(Fault(rng.randint(0, 3000), kind, argument))
    return tuple(faults)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kraft.sim", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voters", type=int, default=3)
    parser.add_argument("--observers", type=int, default=0)
    parser.add_argument("--snapshot-every", type=int, default=0, help="entries between snapshots (0: never)")
    parser.add_argument("--election-timeout-ms", type=int, default=1000,
                        help="controller.quorum.election.timeout.ms (other timeouts follow it)")
    parser.add_argument("--schedule", default="", help="faults, e.g. '400:crash:leader,900:restart:all'")
    parser.add_argument("--search", type=int, default=0, help="run this many seeds from --seed with random schedules")
    args = parser.parse_args(argv)
    if not args.search:
        params = SimParams(args.seed, args.voters, args.observers, args.snapshot_every,
                           parse_schedule(args.schedule), args.election_timeout_ms)
        return _run_one(params)
    for seed in range(args.seed, args.seed + args.search):
        rng = random.Random(seed)
        params = SimParams(seed, args.voters, args.observers, rng.choice([0, 7, 25]),
                           random_schedule(rng, args.voters + args.observers, rng.randint(1, 10)),
                           rng.choice([50, 200, 1000]))
        if _run_one(params, quiet=True):
            return 1
    print(f"{args.search} runs passed")
    return 0


def _run_one(params: SimParams, quiet: bool = False) -> int:
    try:
        result = run(params)
    except SimulationFailure as failure:
        print(f"FAILED {failure}", file=sys.stderr)
        return 1
    if not quiet:
        print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
