"""Builders of tiny random-weight models, saved in the same format the real models use.

They let tests and offline machines run every worker through exactly the loading code of
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

Builder = Callable[[Path], Path]
"""Builds a model into an empty folder and returns the path to load (the folder or a file)."""


def build_lama(out: Path) -> Path:
    """A TorchScript module with LaMa's calling convention.

    ``forward(image[B,3,H,W] in 0..1, mask[B,1,H,W] in {0,1}) -> image[B,3,H,W] in 0..1``,
    like ``big-lama.pt``. Two small convolutions with fixed random weights.
    """
    import torch
    from torch import nn

    class TinyLama(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(4, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 3, 3, padding=1)

        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            x = torch.cat([image * (1 - mask), mask], dim=1)
            y = torch.sigmoid(self.conv2(torch.relu(self.conv1(x))))
            return image * (1 - mask) + y * mask

    torch.manual_seed(0)
    scripted = torch.jit.script(TinyLama().eval())
    path = out / "tiny-lama.pt"
    scripted.save(str(path))  # type: ignore[no-untyped-call]
    return path


BUILDERS: dict[str, Builder] = {
    "lama": build_lama,
}
"""Name -> builder. ``tiny:<name>`` model references resolve through this table."""


def _result_path(folder: Path) -> Path:
    marker = folder / ".lvi-tiny-entry"
    return folder / marker.read_text().strip() if marker.exists() else folder


def ensure(name: str, root: Path) -> Path:
    """Return the path of tiny model ``name`` under ``root``, building it if missing."""
    if name not in BUILDERS:
        raise KeyError(f"unknown tiny model '{name}'; known: {', '.join(sorted(BUILDERS))}")
    folder = root / name
    if (folder / ".lvi-tiny-entry").exists():
        return _result_path(folder)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    tmp.chmod(0o755)
    try:
        entry = BUILDERS[name](tmp)
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
    return {n: ensure(n, root) for n in (names or sorted(BUILDERS))}
