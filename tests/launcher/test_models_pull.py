"""``lvi models pull``: which models a profile needs, pulling them (the hub is faked: tests never
download), checking a cache offline with the real huggingface_hub, and clear errors."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from launcher import cli, models
from launcher.models import ModelRef, model_refs, pull


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lvi_cache: Path) -> Path:
    """An empty Hugging Face cache, the hub off, no per-worker overrides."""
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    import os

    for key in list(os.environ):
        if key.split("_", 1)[0] in ("LLAVA", "SEEM", "GLIGEN", "INPAINT"):
            monkeypatch.delenv(key)
    return home


def fake_cached_file(home: Path, repo: str, filename: str, data: bytes = b"x") -> Path:
    """Lay out one file the way huggingface_hub's cache does (refs/main -> snapshot)."""
    folder = home / "hub" / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text("0" * 40)
    path = folder / "snapshots" / ("0" * 40) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_refs_follow_the_profile_and_the_overrides(
    hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = {(m.worker, m.setting): m for m in model_refs("gpu")}
    assert gpu[("inpaint", "INPAINT_MODEL")].ref == "hf://fashn-ai/LaMa/big-lama.pt"
    assert gpu[("inpaint", "INPAINT_MODEL")].kind == "hub-file"
    for worker in ("llava", "seem", "gligen"):
        if worker in cli.WORKERS:
            assert (worker, f"{worker.upper()}_MODEL") in gpu, worker
            assert gpu[(worker, f"{worker.upper()}_MODEL")].kind == "hub-repo"
    if "seem" in cli.WORKERS:
        assert ("seem", "SEEM_DETECTOR") in gpu  # Grounding DINO is pulled too
    if "gligen" in cli.WORKERS:
        assert ("gligen", "GLIGEN_INPAINT_MODEL") in gpu
    tiny = model_refs("tiny", ["inpaint"])
    assert [(m.ref, m.kind) for m in tiny] == [("tiny:lama", "tiny")]
    assert model_refs("cpu", ["inpaint"]) == []  # OpenCV: no weights

    monkeypatch.setenv("INPAINT_MODEL", "/models/my-lama.pt")
    (ref,) = model_refs("gpu", ["inpaint"])
    assert (ref.ref, ref.kind) == ("/models/my-lama.pt", "local")


def test_pull_builds_tiny_models_offline(hf_home: Path, lvi_cache: Path) -> None:
    out = io.StringIO()
    assert pull("tiny", ["inpaint"], out=out) == 0
    assert (lvi_cache / "tiny" / "lama" / "tiny-lama.pt").is_file()
    assert "All 1 model(s) of profile 'tiny' are ready." in out.getvalue()


def test_check_names_what_is_missing_and_the_way_out(hf_home: Path) -> None:
    out = io.StringIO()
    assert pull("gpu", ["inpaint"], check_only=True, out=out) == 1
    text = out.getvalue()
    assert "MISSING inpaint" in text and "hf://fashn-ai/LaMa/big-lama.pt" in text
    assert "lvi models pull --profile gpu" in text


def test_check_finds_a_filled_cache_with_the_real_hub_client(hf_home: Path) -> None:
    fake_cached_file(hf_home, "fashn-ai/LaMa", "big-lama.pt")
    out = io.StringIO()
    assert pull("gpu", ["inpaint"], check_only=True, out=out) == 0, out.getvalue()
    assert "ok      inpaint" in out.getvalue()
    # ...and the offline pull is then a no-op that says where the file is.
    out = io.StringIO()
    assert pull("gpu", ["inpaint"], out=out) == 0, out.getvalue()
    assert "big-lama.pt" in out.getvalue()


def test_pull_with_the_hub_off_refuses_clearly(hf_home: Path) -> None:
    out = io.StringIO()
    assert pull("gpu", ["inpaint"], out=out) == 1
    assert "HF_HUB_OFFLINE=1 is set" in out.getvalue()
    assert "hf://fashn-ai/LaMa/big-lama.pt" in out.getvalue()


def test_pull_downloads_every_hub_model_once_in_one_format(
    hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub is faked; what matters is what we ask it for."""
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    calls: list[tuple[str, Any]] = []

    def snapshot_download(repo: str, **kw: Any) -> str:
        calls.append(("repo", repo, kw.get("ignore_patterns")))
        return f"/cache/{repo}"

    def hf_hub_download(repo: str, filename: str, **kw: Any) -> str:
        calls.append(("file", f"{repo}/{filename}", None))
        return f"/cache/{repo}/{filename}"

    class Api:
        def list_repo_files(self, repo: str) -> list[str]:
            return ["config.json", "model.safetensors", "pytorch_model.bin"]

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "HfApi", Api)

    out = io.StringIO()
    assert pull("gpu", out=out) == 0, out.getvalue()
    expected = [m for m in model_refs("gpu") if m.kind in ("hub-repo", "hub-file")]
    assert len(calls) == len(expected)
    assert ("file", "fashn-ai/LaMa/big-lama.pt", None) in calls
    for kind, _, ignore in calls:
        if kind == "repo":
            assert "*.bin" in ignore and "*.onnx" in ignore  # safetensors only


def test_invalid_settings_are_an_error_not_a_traceback(
    hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INPAINT_MAX_QUEUE", "lots")
    out = io.StringIO()
    assert pull("gpu", ["inpaint"], out=out) == 2
    assert "INPAINT_MAX_QUEUE='lots'" in out.getvalue()


def test_cli_wiring(hf_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "pull", "--profile", "gpu", "--only", "inpaint", "--check"]) == 1
    assert "MISSING inpaint" in capsys.readouterr().out
    assert cli.main(["models", "pull", "--profile", "tiny", "--only", "inpaint"]) == 0


def test_local_paths_are_checked_not_downloaded(tmp_path: Path) -> None:
    present = tmp_path / "lama.pt"
    present.write_bytes(b"x")
    assert models.is_present(ModelRef("inpaint", "INPAINT_MODEL", str(present), tmp_path))
    assert not models.is_present(ModelRef("inpaint", "INPAINT_MODEL", "/nope/x.pt", tmp_path))
    with pytest.raises(FileNotFoundError):
        models.pull_one(ModelRef("inpaint", "INPAINT_MODEL", "/nope/x.pt", tmp_path))
