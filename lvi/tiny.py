"""Tiny random-weight models: the shared plumbing of their builders.

Each worker's builders live next to it (``services/<name>/tiny.py``) and are named, as import
strings, in its :mod:`lvi.registry` row; this module finds them there and runs them. Tiny models
let tests and offline machines run every worker through exactly the loading code of
the real checkpoints (``torch.jit.load``, ``from_pretrained``). Outputs are meaningless.
Builds are deterministic (fixed seeds) and atomic (built in a temp folder, then renamed), so
concurrent processes can share one cache folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import cast

from lvi import registry

Builder = Callable[[Path], Path]
"""Builds a model into an empty folder and returns the path to load (the folder or a file)."""


def builders() -> dict[str, str]:
    """Tiny model name -> builder import string, from every worker's :mod:`lvi.registry` row.
    ``tiny:<name>`` model references resolve through it."""
    return registry.tiny_builders()


def _result_path(folder: Path) -> Path:
    marker = folder / ".lvi-tiny-entry"
    return folder / marker.read_text().strip() if marker.exists() else folder


REVISIONS: dict[str, int] = {"gligen-generation": 2, "gligen-inpainting": 2}
"""Builders whose layout changed: revision N builds into ``<name>-vN``, so a cache folder
built by an older revision is never reused (gligen v2: the 8x VAE, native 512)."""


def folder_name(name: str) -> str:
    """The cache folder of tiny model ``name`` (its name, plus ``-vN`` past revision 1)."""
    rev = REVISIONS.get(name, 1)
    return name if rev == 1 else f"{name}-v{rev}"


def ensure(name: str, root: Path) -> Path:
    """Return the path of tiny model ``name`` under ``root``, building it if missing."""
    known = builders()
    if name not in known:
        raise KeyError(f"unknown tiny model '{name}'; known: {', '.join(sorted(known))}")
    folder = root / folder_name(name)
    if (folder / ".lvi-tiny-entry").exists():
        return _result_path(folder)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    tmp.chmod(0o755)
    try:
        build = cast(Builder, registry.load(known[name]))
        entry = build(tmp)
        (tmp / ".lvi-tiny-entry").write_text(str(entry.relative_to(tmp)) if entry != tmp else ".")
        try:
            os.rename(tmp, folder)
        except OSError:
            # Another process finished first; its copy is as good as ours.
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _result_path(folder)


def build_all(root: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Build every tiny model (or ``names``) under ``root``; return name -> path."""
    return {n: ensure(n, root) for n in (names or sorted(builders()))}
