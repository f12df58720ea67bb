""".env.example documents every variable: each setting of each component in this checkout
(``<PREFIX>_<FIELD>``; the shared knobs once, as ``LVI_*``) and everything compose uses."""

from __future__ import annotations

import importlib
import re

import pytest
from pydantic_settings import BaseSettings
from support.deploy import ROOT

from launcher.components import COMPONENTS
from lvi import registry

# Fields every component has whose shared variable (LVI_...) is documented once.
SHARED = {"log_level": "LVI_LOG_LEVEL", "log_json": "LVI_LOG_JSON", "profile": "LVI_PROFILE",
          "cache_dir": "LVI_CACHE_DIR"}  # fmt: skip


def documented() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.M))


def settings_class(component: str, prefix: str) -> type[BaseSettings] | None:
    module_name = f"services.{component}.settings" if component not in (
        "gateway", "frontend"
    ) else f"{component}.settings"  # fmt: skip
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        return None
    for obj in vars(module).values():
        if (
            isinstance(obj, type)
            and issubclass(obj, BaseSettings)
            and obj.__module__ == module_name
            and obj.model_config.get("env_prefix") == f"{prefix}_"
        ):
            return obj
    return None


@pytest.mark.parametrize("component", [c for c in COMPONENTS], ids=lambda c: c.name)
def test_every_setting_is_in_env_example(component: object) -> None:
    name, prefix = component.name, component.env_prefix  # type: ignore[attr-defined]
    cls = settings_class(name, prefix)
    if cls is None:
        pytest.fail(f"{name} has no settings module in this checkout")
    have = documented()
    missing = []
    for field in cls.model_fields:
        var = SHARED.get(field) or f"{prefix}_{field.upper()}"
        if var not in have:
            missing.append(var)
    assert not missing, f"document these {name} settings in .env.example: {missing}"


@pytest.mark.parametrize("worker", registry.WORKER_NAMES)
def test_every_worker_url_and_timeout_of_the_gateway_is_in_env_example(worker: str) -> None:
    """The gateway's per-worker variables come from the registry, not from fields."""
    have = documented()
    wanted = [f"GATEWAY_{worker.upper()}_URL", f"GATEWAY_{worker.upper()}_TIMEOUT_S"]
    assert not [v for v in wanted if v not in have], f"document {wanted} in .env.example"
