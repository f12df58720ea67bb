"""Tiny LaMa for the inpaint worker (``tiny:lama``): a TorchScript file with LaMa's calling
convention, loaded by the same ``torch.jit.load`` as ``big-lama.pt``. Looked up through
:mod:`lvi.registry`; built by :func:`lvi.tiny.ensure`."""

from __future__ import annotations

from pathlib import Path


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
