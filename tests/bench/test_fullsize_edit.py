"""bench/fullsize_edit.py runs (one small edit, real processes) and writes its result file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_fullsize_edit_smoke(tmp_path: Path, lvi_cache: Path) -> None:
    out = tmp_path / "fullsize_edit.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "fullsize_edit.py"),
            *("--runs", "1", "--width", "400", "--height", "300", "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env={**os.environ, "LVI_CACHE_DIR": str(lvi_cache), "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["command"].startswith("python ") and "--width 400" in result["command"]
    assert result["profile"] == "local" and result["image"]["width"] == 400
    run = result["runs"][0]
    # The scene's red rectangle is 100x75: GrabCut's mask is that object, not the box.
    assert 0.8 * 7500 < run["mask_area"] < 1.2 * 7500
    assert run["upload_content_type"] == "image/jpeg"
    assert run["upload_stored_bytes"] == result["image"]["jpeg_bytes"]  # kept as sent
    assert result["median"]["download"]["received_bytes"] == run["result_stored_bytes"]
    assert set(result["median"]) == {"upload", "segment", "mask", "remove", "download"}
    assert "| segment |" in proc.stdout and "| total |" in proc.stdout
