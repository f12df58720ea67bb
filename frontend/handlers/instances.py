"""Several objects from one segmentation: the instances a segment call stored, which of them
the user keeps, and the selection they make together.

Pure functions over plain dicts (``MaskInfo`` as JSON, what :class:`UiState` holds), so the
edit handlers can name the selection without knowing how it was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def mask_ref(mask: dict[str, Any]) -> str | list[str]:
    """What an edit sends for the selection: one mask id, or the list of the chosen
    instances' ids (the gateway edits their union)."""
    ids = mask.get("mask_ids")
    return list(ids) if ids else str(mask["mask_id"])


def instance_label(index: int, info: dict[str, Any]) -> str:
    """The picker's label of one instance: ``#1 person 0.87`` (no score for GrabCut)."""
    parts = [f"#{index + 1}", str(info.get("label") or "object")]
    if info.get("score") is not None:
        parts.append(f"{float(info['score']):.2f}")
    return " ".join(parts)


def instance_choices(instances: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(label, mask_id)`` pairs for a ``gr.CheckboxGroup``, best first."""
    return [(instance_label(i, info), str(info["mask_id"])) for i, info in enumerate(instances)]


def chosen_instances(
    instances: Sequence[dict[str, Any]], chosen: Sequence[str]
) -> list[dict[str, Any]]:
    """The chosen instances, in the segmenter's order (best first), unknown ids ignored."""
    keep = set(chosen)
    return [info for info in instances if info["mask_id"] in keep]


def _union_box(boxes: Sequence[Sequence[int]]) -> list[int] | None:
    if not boxes:
        return None
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def selection(picked: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The selected object the edits act on: the one instance as it is, or for several a
    ``MaskInfo``-like dict with their ids in ``mask_ids`` and the box around all of them
    (what the move box shows and drags)."""
    if not picked:
        return None
    if len(picked) == 1:
        return dict(picked[0])
    labels = list(dict.fromkeys(str(p.get("label") or "object") for p in picked))
    return {
        **picked[0],
        "mask_ids": [p["mask_id"] for p in picked],
        "bbox": _union_box([p["bbox"] for p in picked if p.get("bbox")]),
        "area": None,  # the masks may overlap: their sum would overstate it
        "score": None,
        "label": f"{len(picked)} objects ({', '.join(labels)})",
    }
