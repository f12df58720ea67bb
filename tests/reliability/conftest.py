"""Fixtures of the reliability suites and their report (see :mod:`reliability.common` for the
knobs). With ``LVI_RELIABILITY_REPORT=PREFIX`` the run writes ``PREFIX.json`` and ``PREFIX.md``:
one row per scenario, survived or not, with its figures."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from integration.conftest import Stack
from reliability.common import LONG, fast_stack
from support.procs import ProcessFactory


@pytest.fixture(scope="session")
def rel_stack(procs: ProcessFactory) -> Stack:
    """One fast stack shared by the load and fuzz suites (nothing is killed in it)."""
    return fast_stack(procs, chat=LONG and os.environ.get("LOAD_CHAT", "1") == "1")


# -- the report -----------------------------------------------------------------------------
_RESULTS: list[dict[str, Any]] = []


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A test's row in the report: put figures in the returned dict."""
    module = request.node.module.__name__.rsplit(".", 1)[-1]
    suite = module.removeprefix("test_").removesuffix("_suite")
    details: dict[str, Any] = {}
    request.node._lvi_row = {"suite": suite, "scenario": request.node.name, "details": details}
    yield details


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    row = getattr(item, "_lvi_row", None)
    if row is None or rep.when != "call":
        return
    row["result"] = "survived" if rep.passed else ("skipped" if rep.skipped else "NOT survived")
    row["seconds"] = round(rep.duration, 1)
    if rep.failed:
        text = str(rep.longrepr)
        row["failure"] = text[-1500:]
    _RESULTS.append(row)


def pytest_sessionfinish(session: pytest.Session) -> None:
    prefix = os.environ.get("LVI_RELIABILITY_REPORT")
    if not prefix or not _RESULTS:
        return
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.system()}",
        "load_average": os.getloadavg(),
        "long": LONG,
        "command": " ".join(sys.argv),
    }
    write_report(Path(prefix), meta, _RESULTS)


def write_report(out: Path, meta: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """``out``.json (everything) and ``out``.md (one row per scenario)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2, default=str)
    )
    lines = [
        f"# Reliability report ({', '.join(sorted({r['suite'] for r in results}))})",
        "",
        f"- when: {meta['when']}; machine: {meta['machine']}; load average at the end: "
        f"{', '.join(f'{x:.1f}' for x in meta['load_average'])}",
        f"- long versions: {meta['long']}; command: `{meta.get('command', '')}`",
        "",
        "| suite | scenario | result | seconds | figures |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        figures = "; ".join(
            f"{k}={v}"
            for k, v in r["details"].items()
            if not isinstance(v, dict | list)
            or (isinstance(v, list) and len(v) <= 6 and all(isinstance(x, int | float) for x in v))
        )
        answers = r["details"].get("answers")
        if isinstance(answers, dict) and answers:
            # Hostile inputs: how many cases, and the statuses they got.
            tally: dict[str, int] = {}
            for v in answers.values():
                code = str(v)[:3]
                tally[code] = tally.get(code, 0) + 1
            shown = ", ".join(f"{k}x{n}" for k, n in sorted(tally.items()))
            figures = f"cases={len(answers)} ({shown})" + (f"; {figures}" if figures else "")
        lines.append(
            f"| {r['suite']} | {r['scenario']} | {r['result']} | {r['seconds']} | {figures} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long versions run only under LVI_LONG=1 (make fault/load/fuzz): deselected, not
    skipped, so a normal run reports exactly what it ran."""
    if LONG:
        return
    keep = [i for i in items if i.get_closest_marker("long") is None]
    dropped = [i for i in items if i.get_closest_marker("long") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
