"""The ``auto`` profile (``lvi up``'s default) and the ``local`` row it falls back to.

The choice is a unit with its CUDA check and cache lookup injected; every registry row is
checked to build valid settings for its worker. The whole stack under the resolved row runs
in tests/launcher/test_launcher.py (``test_the_default_first_run_gives_real_masks_and_fills``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import get_args

import pytest

from gateway.routes.health import random_skills
from launcher.autoprofile import choose_profile, missing_in_cache
from launcher.models import model_refs
from lvi import registry
from lvi.contracts.gateway import WorkerStatus
from lvi.profiles import profile_defaults
from lvi.settings import Profile

WORKERS = list(registry.WORKER_NAMES)


class Lookup:
    """A cache lookup that records its calls and reports ``absent`` as missing."""

    def __init__(self, absent: list[str]) -> None:
        self.absent = absent
        self.calls: list[tuple[str, list[str]]] = []

    def __call__(self, profile: str, workers: list[str], env: Mapping[str, str]) -> list[str]:
        self.calls.append((profile, workers))
        return list(self.absent)


def test_without_cuda_auto_is_the_local_row_and_the_cache_is_not_consulted() -> None:
    lookup = Lookup([])
    choice = choose_profile("auto", WORKERS, {}, cuda=lambda: False, missing=lookup)
    assert choice.profile == "local"
    assert "no CUDA GPU" in choice.reason
    assert choice.describe().startswith("profile auto -> local: no CUDA GPU")
    assert lookup.calls == []


def test_cuda_and_every_gpu_weight_cached_picks_gpu() -> None:
    lookup = Lookup([])
    choice = choose_profile("auto", WORKERS, {}, cuda=lambda: True, missing=lookup)
    assert choice.profile == "gpu"
    assert lookup.calls == [("gpu", WORKERS)]  # only the workers that will run
    assert "CUDA GPU" in choice.describe()


def test_cuda_without_the_weights_is_local_and_names_what_is_missing() -> None:
    absent = ["llava-hf/llava-1.5-7b-hf", "a", "b", "c", "d", "e"]
    choice = choose_profile("auto", WORKERS, {}, cuda=lambda: True, missing=Lookup(absent))
    assert choice.profile == "local"
    assert "llava-hf/llava-1.5-7b-hf" in choice.reason and "and 2 more" in choice.reason
    assert "lvi models pull --profile gpu" in choice.reason


@pytest.mark.parametrize("profile", registry.PROFILE_NAMES)
def test_an_explicit_profile_is_kept_without_any_check(profile: str) -> None:
    def boom(*_: object) -> list[str]:
        raise AssertionError("no lookup for an explicit profile")

    def no_cuda() -> bool:
        raise AssertionError("no CUDA check for an explicit profile")

    choice = choose_profile(profile, WORKERS, {}, cuda=no_cuda, missing=boom)
    assert (choice.requested, choice.profile) == (profile, profile)


def test_the_real_cache_lookup_finds_nothing_in_an_empty_hf_cache(tmp_path: object) -> None:
    env = {"HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    missing = missing_in_cache("gpu", ["inpaint", "seem"], env)
    assert "hf://fashn-ai/LaMa/big-lama.pt" in missing and "facebook/sam-vit-huge" in missing
    assert missing_in_cache("local", WORKERS, env) == []  # tiny models are built on use


def test_settings_profiles_are_the_registry_profiles() -> None:
    assert set(get_args(Profile)) == set(registry.PROFILE_NAMES)
    assert registry.AUTO_PROFILE not in registry.PROFILE_NAMES
    assert registry.LAUNCH_PROFILES[0] == registry.AUTO_PROFILE
    assert set(registry.PROFILE_NAMES) >= registry.RANDOM_PROFILES


@pytest.mark.parametrize("profile", registry.PROFILE_NAMES)
@pytest.mark.parametrize("worker", WORKERS)
def test_every_row_builds_valid_settings_with_a_known_backend(worker: str, profile: str) -> None:
    spec = registry.get(worker)
    settings = registry.load(spec.settings)(profile=profile)
    backends = registry.load(spec.app.replace(".app:create_app", ".backends:BACKENDS"))
    assert settings.backend in backends, (worker, profile, settings.backend)
    for key, value in profile_defaults(worker, profile).items():
        assert getattr(settings, key) == value, (worker, profile, key)


def test_the_local_row_is_classical_where_it_can_be_and_tiny_elsewhere() -> None:
    rows = {w: profile_defaults(w, "local") for w in WORKERS}
    assert rows["seem"]["backend"] == "grabcut" and rows["seem"]["model"] is None
    assert rows["seem"]["detector"] == "tiny:grounding-dino"  # text via the tiny detector
    assert rows["inpaint"] == {"backend": "opencv", "model": None}
    assert rows["llava"] == profile_defaults("llava", "tiny")
    assert rows["gligen"] == profile_defaults("gligen", "tiny")
    # Nothing to download: every model reference of the row is tiny.
    assert all(m.kind == "tiny" for m in model_refs("local", WORKERS, {}))


def test_under_the_local_row_only_chat_and_generation_are_random() -> None:
    workers = [
        WorkerStatus(
            name=w,
            skill=registry.get(w).skill,
            url="u",
            state="ready",
            info={"profile": "local", "backend": profile_defaults(w, "local")["backend"]},
        )
        for w in WORKERS
    ]
    assert random_skills(workers) == ["chat", "generation"]
