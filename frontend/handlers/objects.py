"""Several objects from one segmentation: every instance the segmenter found is stored by the
gateway, listed for the user, and the checked ones together are the selected object that
remove, move and replace act on (one edit, the union of their masks)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from frontend.handlers.errors import fail, user_errors
from frontend.handlers.instances import chosen_instances, instance_choices, selection
from frontend.handlers.segment import SegmentHandlers
from frontend.handlers.state import MaskView, UiState
from lvi.contracts.gateway import MaskInfo, SegmentResult

NOTHING_CHOSEN = "No object chosen: check at least one of the objects found."


@dataclass
class InstancesView:
    """The instance picker: ``(label, mask_id)`` choices, the checked ids, and whether it
    shows at all (only when a segmentation found more than one object)."""

    choices: list[tuple[str, str]]
    chosen: list[str]
    visible: bool


class ObjectHandlers(SegmentHandlers):
    """A segmentation's instances, all chosen at first; the user may uncheck some."""

    async def _select(self, state: UiState, info: SegmentResult) -> tuple[UiState, MaskView]:
        found = info.instances or [info]
        instances = [m.model_dump(mode="json", exclude={"instances"}) for m in found]
        chosen = [m["mask_id"] for m in instances]
        return await self._show(replace(state, instances=instances, chosen=chosen))

    async def choose(
        self, state: UiState, chosen: Sequence[str] | None
    ) -> tuple[UiState, MaskView]:
        """The user checked or unchecked instances: the selection is the union of the
        checked ones (none checked: nothing selected, the edits ask for an object)."""
        self._need_image(state)
        if not state.instances:
            raise fail("Segment first: the objects found are listed here.")
        keep = [m["mask_id"] for m in chosen_instances(state.instances, chosen or [])]
        return await self._show(replace(state, chosen=keep))

    def instances_view(self, state: UiState) -> InstancesView:
        return InstancesView(
            instance_choices(state.instances), list(state.chosen), len(state.instances) > 1
        )

    def clear_prompts(self, state: UiState) -> UiState:
        return replace(super().clear_prompts(state), instances=[], chosen=[])

    async def _show(self, state: UiState) -> tuple[UiState, MaskView]:
        """The chosen instances as the selected object, drawn as one mask over the head."""
        picked = chosen_instances(state.instances, state.chosen)
        mask = selection(picked)
        state = replace(state, mask=mask)
        assert state.head_path
        if mask is None:
            return state, MaskView(state.head_path, [], NOTHING_CHOSEN, None, "")
        pngs = await asyncio.gather(*(self._mask_png(state, m["mask_id"]) for m in picked))
        return state, self._mask_view(state, MaskInfo.model_validate(mask), _union_png(pngs))

    async def _mask_png(self, state: UiState, mask_id: str) -> bytes:
        """A stored mask's PNG, fetched once (toggling instances refetches nothing)."""
        key = f"mask-{mask_id}"
        path = self.files.known(key)
        if path is not None:
            return path.read_bytes()
        assert state.session_id
        with user_errors():
            data = await self.gateway(state).get_mask(state.session_id, mask_id)
        self.files.write(key, data, ".png")
        return data


def _union_png(pngs: Sequence[bytes]) -> bytes:
    """One mask PNG (white inside) covering every given mask; one is passed on unchanged."""
    if len(pngs) == 1:
        return pngs[0]
    masks = [np.asarray(Image.open(io.BytesIO(p)).convert("L")) > 0 for p in pngs]
    union = np.logical_or.reduce(masks)
    buf = io.BytesIO()
    Image.fromarray(union.astype(np.uint8) * 255).save(buf, format="PNG")
    return buf.getvalue()
