"""The rules planner's own time per message, over the planner's test set (issue 15).

Plans every message of tests/gateway/planner/cases.py in-process (no server, no network),
``--rounds`` times after one warm-up round, and reports per-message medians, p99 and the
maximum in microseconds, by kind of message, plus the 10,000-character worst cases.

    .venv/bin/python bench/planner_speed.py [--rounds 200] [--json bench/results/planner_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.planner.rules import RulesPlanner  # noqa: E402
from gateway.planner.steps import PlanContext  # noqa: E402
from tests.gateway.planner.cases import ASK, CASES, CONTEXTS  # noqa: E402

LONG = {
    "10k: 'remove the dog ' repeated": "remove the dog " * 700,
    "10k: one word": "a" * 10_000,
    "10k: 'and ' repeated": "and " * 2500,
    "10k: 'move ' + 'left ' repeated": "move " + "left " * 2000,
    "10k: 'add a dog on the left, ' repeated": "add a dog on the left, " * 450,
}


def kind(expected: Any) -> str:
    if isinstance(expected, tuple) and expected[0] == ASK:
        return "asks back"
    if not expected:
        return "no action"
    return "multi-step edit" if len(expected) > 2 else "edit"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(planner: RulesPlanner, message: str, ctx: PlanContext, rounds: int) -> list[float]:
    planner.plan_sync(message, ctx)
    times = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        planner.plan_sync(message, ctx)
        times.append((time.perf_counter_ns() - start) / 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    planner = RulesPlanner()
    by_kind: dict[str, list[float]] = {}
    every: list[float] = []
    for message, ctx_name, expected in CASES:
        times = measure(planner, message, CONTEXTS[ctx_name], args.rounds)
        med = statistics.median(times)
        by_kind.setdefault(kind(expected), []).append(med)
        every.append(med)
    rows = [
        {
            "kind": k,
            "messages": len(v),
            "median_us": round(statistics.median(v), 1),
            "p99_us": round(pct(v, 0.99), 1),
            "max_us": round(max(v), 1),
        }
        for k, v in sorted(by_kind.items())
    ]
    rows.append(
        {
            "kind": "all",
            "messages": len(every),
            "median_us": round(statistics.median(every), 1),
            "p99_us": round(pct(every, 0.99), 1),
            "max_us": round(max(every), 1),
        }
    )
    ctx = PlanContext(width=640, height=480)
    long_rows = []
    for name, message in LONG.items():
        times = measure(planner, message[:10_000], ctx, max(5, args.rounds // 20))
        long_rows.append(
            {
                "case": name,
                "median_us": round(statistics.median(times), 1),
                "max_us": round(max(times), 1),
            }
        )
    result = {
        "benchmark": "rules planner time per message (in-process, medians per message)",
        "command": " ".join(["python", "bench/planner_speed.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} CPUs",
        "date": time.strftime("%Y-%m-%d"),
        "rounds": args.rounds,
        "by_kind": rows,
        "long_messages": long_rows,
    }
    print("| kind | messages | median (us) | p99 (us) | max (us) |\n|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['kind']} | {r['messages']} | {r['median_us']} | {r['p99_us']} | {r['max_us']} |"
        )
    print("\n| 10,000-character message | median (us) | max (us) |\n|---|---|---|")
    for r in long_rows:
        print(f"| {r['case']} | {r['median_us']} | {r['max_us']} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
