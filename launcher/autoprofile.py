"""The ``auto`` profile: what ``lvi up`` runs when nobody chose a profile.

``auto`` is not a settings row: it is resolved once, at start, into a concrete profile that
every child then gets as ``LVI_PROFILE``:

- ``gpu`` when torch sees a CUDA GPU and every model of the gpu profile is already in the
  local caches (the same check as ``lvi models pull --check``: nothing is downloaded);
- ``local`` otherwise: GrabCut (clicks, boxes, strokes; text through the tiny Grounding DINO)
  and OpenCV fill, so segment, remove and move give real results without weights; LLaVA and
  GLIGEN stay tiny (random), which the gateway's ``/v1/info`` and the UI's banner say.

The CUDA check and the cache lookup are injected so the choice can be tested without either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from lvi.registry import AUTO_PROFILE

GPU_PROFILE = "gpu"
FALLBACK_PROFILE = "local"

BANNER_NOTES: Mapping[str, str] = {
    "tiny": " (tiny profile: random weights, meaningless outputs)",
    "local": " (local profile: GrabCut and OpenCV give real masks and fills; chat and "
    "generation run random weights)",
}
"""What ``lvi up``'s "The stack is up." line adds for a profile with random weights."""

CudaCheck = Callable[[], bool]
MissingLookup = Callable[[str, list[str], Mapping[str, str]], list[str]]
"""(profile, workers, env) -> the model references of that profile not on this machine."""


@dataclass(frozen=True)
class ProfileChoice:
    """The concrete profile ``lvi up`` runs, and why (one line the launcher prints)."""

    requested: str
    profile: str
    reason: str

    def describe(self) -> str:
        if self.requested == self.profile:
            return f"profile {self.profile} ({self.reason})"
        return f"profile {self.requested} -> {self.profile}: {self.reason}"


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device (torch imported only here)."""
    try:
        import torch
    except ImportError:
        return False
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # a broken driver is "no GPU" for this choice, not a crash
        return False


def missing_in_cache(profile: str, workers: list[str], env: Mapping[str, str]) -> list[str]:
    """The model references of ``profile`` for ``workers`` that are not in the local caches
    (tiny models count as present: they are built on first use)."""
    from launcher.models import is_present, model_refs

    return [m.ref for m in model_refs(profile, workers, env) if not is_present(m, env)]


def choose_profile(
    requested: str,
    workers: Iterable[str],
    env: Mapping[str, str],
    *,
    cuda: CudaCheck = cuda_available,
    missing: MissingLookup = missing_in_cache,
) -> ProfileChoice:
    """Resolve ``requested``: a concrete profile is kept as it is; ``auto`` becomes ``gpu``
    (CUDA and every gpu model of ``workers`` cached) or ``local``."""
    if requested != AUTO_PROFILE:
        return ProfileChoice(requested, requested, "chosen explicitly")
    names = list(workers)
    if not cuda():
        return ProfileChoice(
            requested,
            FALLBACK_PROFILE,
            "no CUDA GPU, so GrabCut and OpenCV for segment/remove/move, random tiny models "
            "for chat and generation",
        )
    absent = missing(GPU_PROFILE, names, env) if names else []
    if absent:
        shown = ", ".join(absent[:4]) + (f" and {len(absent) - 4} more" if len(absent) > 4 else "")
        return ProfileChoice(
            requested,
            FALLBACK_PROFILE,
            f"a CUDA GPU, but the gpu profile's weights are not all cached (missing: {shown}; "
            "`lvi models pull --profile gpu` fetches them), so GrabCut and OpenCV for "
            "segment/remove/move, random tiny models for chat and generation",
        )
    return ProfileChoice(
        requested, GPU_PROFILE, "a CUDA GPU and every model of the gpu profile in the cache"
    )
