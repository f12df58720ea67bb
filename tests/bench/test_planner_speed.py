"""bench/planner_speed.py runs (a few rounds) and writes the result file it documents."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_planner_speed_smoke(tmp_path: Path) -> None:
    out = tmp_path / "planner_speed.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "planner_speed.py"),
            "--rounds",
            "2",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    kinds = {row["kind"] for row in result["by_kind"]}
    assert {"edit", "asks back", "no action", "all"} <= kinds
    assert len(result["long_messages"]) == 5
    assert "| all |" in proc.stdout
