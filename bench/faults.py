"""A real cluster's faults, one scenario at a time: one row each (trials asked / finished /
failed and rerun / lost / duplicated, worker exits, wall time).

    sudo python bench/faults.py [--trials 8] [--workers 2] [--only NAME ...]

PostgreSQL and the workers run on separate network hosts of this machine (bench/faultlab.py:
network namespaces joined by veth links through a router; needs root, iproute2 and the
PostgreSQL server binaries). Scenarios: a worker's host cut off mid-trial past the grace
period, then reconnected; the same within the grace period; PostgreSQL stopped and started
again mid-search; a worker SIGKILLed; a worker SIGSTOPped past the grace period, then
continued. Goal: every row with the trials asked finished, 0 lost, 0 duplicated, every worker
exit 0 (but the killed one) and no promise broken (listed under the table otherwise; exit 1).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faultlab  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="trials per scenario")
    parser.add_argument("--workers", type=int, default=2, help="worker hosts")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="scenarios to run (default: all): "
                        + ", ".join(repr(s.name) for s in faultlab.SCENARIOS))
    args = parser.parse_args()
    why = faultlab.missing()
    if why is not None:
        print(f"faults.py: cannot build the lab: {why}", file=sys.stderr)
        return 2
    scenarios = [s for s in faultlab.SCENARIOS if not args.only or s.name in args.only]
    if not scenarios:
        print(f"faults.py: no scenario named {args.only}", file=sys.stderr)
        return 2
    t = faultlab.Timing()
    print(f"{time.strftime('%Y-%m-%d')}, {platform.node()} ({platform.machine()}, "
          f"{len(os.sched_getaffinity(0))} cores): {args.workers} worker hosts, "
          f"heartbeat {t.heartbeat} s, grace {t.grace} s, storage timeout "
          f"{t.storage_timeout:g} s, patience {t.patience:g} s, a cut within grace "
          f"{t.short_cut:g} s", flush=True)
    print("| " + " | ".join(faultlab.HEADER) + " |")
    print("| " + " | ".join("---" for _ in faultlab.HEADER) + " |", flush=True)

    def row(outcome: faultlab.Outcome) -> None:
        print("| " + " | ".join(outcome.row()) + " |", flush=True)

    outcomes = faultlab.run_all(scenarios, args.trials, args.workers, t, each=row)
    print()
    for scenario in scenarios:
        print(f"- {scenario.name}: {scenario.what}")
    broken = [(o.scenario, p) for o in outcomes for p in o.problems]
    for scenario, problem in broken:
        print(f"{scenario}: {problem}")
    for o in outcomes:
        if o.problems:
            for name, text in o.logs.items():
                print(f"--- {o.scenario}, {name}:\n{text[-4000:]}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
