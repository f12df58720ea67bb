"""bench/gpu_stack.py --smoke: the end-to-end GPU script, run on the CPU with the scaled-down
full-size models (bench/fullsize_models.py), through real processes and the gateway's API.

It checks the script's contract, not speed: one JSON line per measurement, memory per
process, every workflow timed at each concurrency with no error, and the 4-bit phase refused
with the worker's CUDA message (this machine has no GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = {
    "upload", "segment_click_miss", "segment_click_hit", "segment_text", "remove", "move",
    "replace", "inpaint", "generate", "chat_ttft", "chat_tok_per_s",
}  # fmt: skip
PROCESSES = {"redis", "llava", "seem", "gligen", "inpaint", "gateway"}


@pytest.mark.slow
def test_smoke_run_writes_every_measurement(tmp_path: Path) -> None:
    out = tmp_path / "stack.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_stack.py"), "--smoke",
         "--concurrency", "1,2", "--work", str(tmp_path / "work"), "--out", str(out),
         "--time-limit", "400"],
        capture_output=True, text=True, timeout=560, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert r.returncode == 0, r.stderr[-3000:] + "\n" + out.read_text()[-3000:]
    kinds = [rec["kind"] for rec in records]
    assert kinds[0] == "start" and kinds[-1] == "end" and records[-1]["failures"] == 0
    assert records[0]["smoke"] is True and records[0]["cuda"] is False
    ready = [m for m in records if m["kind"] == "memory" and m["when"] == "ready"]
    assert ready and set(ready[0]["per_process"]) == PROCESSES
    for proc in ready[0]["per_process"].values():
        assert proc["pid"] > 0 and proc["gpu_mib"] is None  # no nvidia-smi here
    runs = {rec["sessions"]: rec for rec in records if rec["kind"] == "workflows"}
    assert set(runs) == {1, 2}
    for n, rec in runs.items():
        assert rec["errors"] == [], rec["errors"]
        assert set(rec["workflows"]) >= WORKFLOWS, n
        for stats in rec["workflows"].values():
            assert stats["n"] >= 1 and 0 <= stats["p50"] <= stats["p99"] <= stats["max"]
        assert rec["workflows"]["upload"]["n"] == n
    (refusal,) = [rec for rec in records if rec["kind"] == "error"]
    assert refusal["phase"] == "4bit" and "needs a CUDA GPU" in refusal["log"]


def test_full_size_tokenizers_match_the_published_vocabularies() -> None:
    """The full-size builders' tokenizers have the published sizes and special ids, and every
    id a random model can emit decodes to text (so streamed replies are never empty)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import fullsize_models as fm

    llava = fm.llava_tokenizer(32064, image_id=32000, pad_id=32001)
    assert len(llava) == 32064 and llava.convert_tokens_to_ids("<image>") == 32000
    assert (llava.bos_token_id, llava.eos_token_id, llava.pad_token_id) == (1, 2, 32001)
    assert llava.decode([5, 31999, 32063]).split() == ["w5", "w31999", "w32063"]
    clip = fm.clip_tokenizer(49408, bos_id=49406, eos_id=49407)
    ids = clip("a photo of a cat")["input_ids"]
    assert len(clip) == 49408 and ids[0] == 49406 and ids[-1] == 49407
    bert = fm.bert_tokenizer(30522)
    assert len(bert) == 30522
    assert bert.convert_tokens_to_ids(["[CLS]", "[SEP]", ".", "?"]) == [101, 102, 1012, 1029]
