"""``lvi models pull``: put every model a profile needs into the local caches.

Which models: each worker's settings under the chosen profile (so ``LLAVA_MODEL=...`` and the
other per-worker overrides are honoured). A worker's model settings are ``model``, any field
ending in ``_model``, and the extra fields its :mod:`lvi.registry` row names (``model_fields``:
SEEM's Grounding DINO ``detector``).

What pulling means for each kind of reference (see :mod:`lvi.profiles`):

- hub id (``llava-hf/llava-1.5-7b-hf``): ``snapshot_download`` into the Hugging Face cache
  (``HF_HOME``), weights in one format only (safetensors when the repo has them);
- ``hf://owner/repo/file``: that one file;
- ``tiny:<name>``: built locally into ``$LVI_CACHE_DIR/tiny``;
- a local path: checked, never downloaded.

huggingface_hub draws the progress bars. Afterwards the stack runs with ``HF_HUB_OFFLINE=1``;
the same command runs as a Kubernetes Job or a Compose one-shot service that fills the shared
model-cache volume. ``--check`` only reports what is missing (no network), which is what an
init container waits on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from lvi import registry
from lvi.profiles import hub_offline

# Formats we never load: skipped so a snapshot holds one copy of the weights.
IGNORE_ALWAYS = ["*.onnx", "*.onnx_data", "*.msgpack", "*.h5", "*.tflite", "*.ot", "*.mlmodel"]
IGNORE_WHEN_SAFETENSORS = ["*.bin", "*.pth", "*.pt", "*.ckpt"]


class InvalidSettings(ValueError):
    """A worker's settings (environment) do not validate; the message names each variable."""


def _settings(cls: Any, worker: str, profile: str) -> Any:
    from pydantic import ValidationError

    try:
        return cls(profile=profile)
    except ValidationError as e:
        prefix = str(cls.model_config.get("env_prefix", ""))
        problems = [
            f"{prefix}{'_'.join(str(p) for p in err['loc'])}".upper()
            + f"={err.get('input')!r}: {err['msg']}"
            for err in e.errors()
        ]
        raise InvalidSettings(
            f"Invalid settings for the {worker} worker: " + "; ".join(problems)
        ) from None


@dataclass(frozen=True)
class ModelRef:
    """One model a worker needs: which worker, which setting, which reference."""

    worker: str
    setting: str  # the env variable that overrides it, e.g. LLAVA_MODEL
    ref: str
    cache_dir: Path  # the worker's LVI_CACHE_DIR (tiny models are built there)

    @property
    def kind(self) -> str:
        if self.ref.startswith("tiny:"):
            return "tiny"
        if self.ref.startswith("hf://"):
            return "hub-file"
        if self.ref.startswith(("/", "./", "../", "~")) or Path(self.ref).expanduser().exists():
            return "local"
        return "hub-repo"


def _settings_class(worker: str) -> Any:
    return registry.load(registry.get(worker).settings)


def model_refs(
    profile: str, workers: Iterable[str] | None = None, env: Mapping[str, str] | None = None
) -> list[ModelRef]:
    """Every model reference the given workers (default: all registered) use under ``profile``."""
    names = list(workers) if workers is not None else sorted(registry.WORKER_NAMES)
    refs: list[ModelRef] = []
    saved = None
    if env is not None:  # settings classes read os.environ: evaluate them under ``env``
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
    try:
        for name in names:
            cls = _settings_class(name)
            settings = _settings(cls, name, profile)
            prefix = str(cls.model_config.get("env_prefix", ""))
            fields = [
                f
                for f in cls.model_fields
                if f == "model" or f.endswith("_model") or f in registry.get(name).model_fields
            ]
            for f in fields:
                value = getattr(settings, f, None)
                if isinstance(value, str) and value.strip():
                    refs.append(
                        ModelRef(name, f"{prefix}{f}".upper(), value.strip(), settings.cache_dir)
                    )
    finally:
        if saved is not None:
            os.environ.clear()
            os.environ.update(saved)
    return refs


def _split_hf_file(ref: str) -> tuple[str, str]:
    parts = ref.removeprefix("hf://").split("/")
    if len(parts) < 3:
        raise ValueError(f"hf:// reference must be hf://<owner>/<repo>/<file>: {ref}")
    return "/".join(parts[:2]), "/".join(parts[2:])


def hub_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The Hugging Face hub cache folder that ``env`` selects, resolved the way huggingface_hub
    does. Passed explicitly on every call: the library reads its variables once, at import."""
    env = os.environ if env is None else env
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(var):
            return Path(env[var]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def is_present(m: ModelRef, env: Mapping[str, str] | None = None) -> bool:
    """True when ``m`` can be loaded without the network (tiny models count: built on use)."""
    kind = m.kind
    if kind == "tiny":
        return True
    if kind == "local":
        return Path(m.ref).expanduser().exists()
    from huggingface_hub import hf_hub_download, snapshot_download

    cache = hub_cache_dir(env)
    try:
        if kind == "hub-file":
            repo, filename = _split_hf_file(m.ref)
            hf_hub_download(repo, filename, cache_dir=cache, local_files_only=True)
        else:
            snapshot_download(m.ref, cache_dir=cache, local_files_only=True)
    except Exception:
        return False
    return True


def missing_models(
    profile: str, workers: Iterable[str], env: Mapping[str, str] | None = None
) -> list[ModelRef]:
    """Models that cannot be loaded: local paths that do not exist, and, when the hub is off
    (``HF_HUB_OFFLINE=1``), hub models that are not in the cache. Online, a worker downloads
    what it lacks on first use, so only local paths can be known missing."""
    env = os.environ if env is None else env
    offline = str(env.get("HF_HUB_OFFLINE", "")).lower() in ("1", "true", "yes", "on")
    return [
        m
        for m in model_refs(profile, workers, env)
        if (m.kind == "local" or offline) and not is_present(m, env)
    ]


def _ignore_patterns(repo: str) -> list[str]:
    """Skip formats we never load; skip pickled weights when the repo has safetensors."""
    from huggingface_hub import HfApi

    try:
        files = HfApi().list_repo_files(repo)
    except Exception:
        return IGNORE_ALWAYS
    if any(f.endswith(".safetensors") for f in files):
        return IGNORE_ALWAYS + IGNORE_WHEN_SAFETENSORS
    return IGNORE_ALWAYS


def pull_one(m: ModelRef) -> str:
    """Fetch (or build, or check) one model; return where it is."""
    kind = m.kind
    if kind == "tiny":
        from lvi import tiny

        return str(tiny.ensure(m.ref.removeprefix("tiny:"), m.cache_dir / "tiny"))
    if kind == "local":
        path = Path(m.ref).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        return str(path)
    from huggingface_hub import hf_hub_download, snapshot_download

    cache = hub_cache_dir()
    if kind == "hub-file":
        repo, filename = _split_hf_file(m.ref)
        return str(hf_hub_download(repo, filename, cache_dir=cache))
    return str(snapshot_download(m.ref, cache_dir=cache, ignore_patterns=_ignore_patterns(m.ref)))


def pull(
    profile: str,
    workers: Iterable[str] | None = None,
    *,
    check_only: bool = False,
    out: IO[str] | None = None,
) -> int:
    """Pull (or with ``check_only`` just check) every model of ``profile``. Exit code."""
    out = out or sys.stdout
    try:
        refs = model_refs(profile, workers)
    except InvalidSettings as e:
        print(f"error: {e}", file=out)
        return 2
    if not refs:
        print(f"profile '{profile}': no worker needs model files.", file=out)
        return 0
    needs_hub = [m for m in refs if m.kind in ("hub-repo", "hub-file")]
    if needs_hub and not check_only and hub_offline():
        missing = [m for m in needs_hub if not is_present(m)]
        if missing:
            names = ", ".join(m.ref for m in missing)
            print(
                f"error: HF_HUB_OFFLINE=1 is set, so {names} cannot be downloaded. Unset it "
                "(`HF_HUB_OFFLINE=0 lvi models pull`) on a machine that can reach the hub.",
                file=out,
            )
            return 1
    failed: list[tuple[ModelRef, str]] = []
    for m in refs:
        label = f"{m.worker:<8} {m.setting:<16} {m.ref}"
        if check_only:
            ok = is_present(m)
            print(f"{'ok     ' if ok else 'MISSING'} {label}", file=out, flush=True)
            if not ok:
                failed.append((m, "not in the cache"))
            continue
        print(f"pulling {label}", file=out, flush=True)
        try:
            where = pull_one(m)
        except Exception as e:
            failed.append((m, f"{type(e).__name__}: {e}"))
            print(f"  failed: {type(e).__name__}: {e}", file=out, flush=True)
        else:
            print(f"  -> {where}", file=out, flush=True)
    if failed:
        print(f"\n{len(failed)} of {len(refs)} model(s) are not available:", file=out)
        for m, why in failed:
            print(f"  {m.worker}: {m.ref} ({m.setting}): {why}", file=out)
        if check_only:
            print(f"Run `lvi models pull --profile {profile}` with hub access.", file=out)
        return 1
    done = "present" if check_only else "ready"
    print(f"\nAll {len(refs)} model(s) of profile '{profile}' are {done}.", file=out)
    return 0
