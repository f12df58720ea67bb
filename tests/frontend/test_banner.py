"""The random-weights banner names the skills whose models are random (issue 14)."""

from __future__ import annotations

from frontend.handlers.errors import TINY_BANNER, random_banner
from lvi.contracts.gateway import ServiceInfo


def info(random: list[str], flag: bool | None = None) -> ServiceInfo:
    return ServiceInfo(
        version="t",
        random_weights=bool(random) if flag is None else flag,
        random_skills=random,
        profiles={},
        limits={},
        workers=[],
    )


def test_the_local_profile_banner_names_chat_and_generation_only() -> None:
    text = random_banner(info(["chat", "generation"]))
    assert text is not None and text.startswith("**Random-weight models for chat, generation:**")
    assert "segmentation" not in text and "GrabCut" in text


def test_real_models_have_no_banner_and_an_unnamed_random_stack_the_tiny_one() -> None:
    assert random_banner(info([])) is None
    assert random_banner(info([], flag=True)) == TINY_BANNER  # a gateway that names none
