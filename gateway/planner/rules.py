"""The ``rules`` planner: a small English grammar for edit requests (no model, no network).

Longer than most modules (about 570 lines) because the grammar is one piece: the clause
splitter, the target (object) parser and one parser per verb family (word lists: lexicon.py).
docs/PLANNER.md lists what it covers, with examples.

How a message is read:
1. Lower-cased, split into sentences at ``. ! ? ;`` and newlines.
2. A sentence that is a question ("what is...", "should I remove...?") or a description is never
   an edit. "Can you / could you / please ..." are requests, not questions.
3. A sentence splits into clauses at ``,`` / ``and`` / ``then`` / ``after that`` only where a
   verb follows, so "replace the cat with a dog and a ball" stays one clause.
4. Each clause's leading verb picks a parser; its object becomes a ``segment`` step (text,
   position/size selection) or, for "it/this/that", the click/box/stroke sent with the message,
   else the session's last mask.
A missing part makes the whole plan one question (no half plan is run). Every regular
expression here is anchored or a plain alternation, so time is linear in the message length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway.planner import lexicon as lx
from gateway.planner.steps import (
    GenerateStep,
    InpaintStep,
    MaskRef,
    MoveStep,
    Plan,
    PlanContext,
    RedoStep,
    RemoveStep,
    ReplaceStep,
    SegmentStep,
    Select,
    Step,
    UndoStep,
)

MAX_STEPS = 16
# A generate step in the plan makes an image of the gateway's default size; later steps of the
# same plan (move amounts, add places) are computed against it.
GENERATE_SIZE = (512, 512)
# Move amounts, as fractions of the image's size along the move's axis.
MOVE_DEFAULT = 0.20  # "move the cat left"
MOVE_SMALL = 0.05  # "a bit", "slightly", "a little"
MOVE_LARGE = 0.40  # "a lot", "far"

NO_IMAGE = (
    "There is no image in this session yet: upload one, or ask me to draw one "
    "(for example 'draw a cat on a sofa')."
)


class _Ask(Exception):
    """A missing part: the plan becomes this question."""


@dataclass
class _State:
    ctx: PlanContext
    width: int | None
    height: int | None
    steps: list[Step] = field(default_factory=list)
    segmented: bool = False
    visual_used: bool = False


def _tokens(text: str) -> list[str]:
    return lx.TOKEN.findall(text)


def _strip_prefixes(words: list[str]) -> list[str]:
    """Drop politeness and framing at both ends ('could you please ... for me, thanks')."""
    start, end = 0, len(words)
    changed = True
    while changed and start < end:
        changed = False
        if words[start] == ",":
            start, changed = start + 1, True
            continue
        for p in lx.PREFIXES_BY_FIRST.get(words[start], ()):
            if words[start : start + len(p)] == p:
                start, changed = start + len(p), True
                break
    while end > start:
        if words[end - 1] in {"please", "thanks", ",", "now", "and"}:
            end -= 1
        elif end - start > 2 and words[end - 2 : end] in (["for", "me"], ["thank", "you"]):
            end -= 2
        else:
            break
    return words[start:end]


def _is_question(sentence: str, terminator: str) -> bool:
    words = _tokens(sentence)
    while words and words[0] in lx.GREETINGS:
        words = words[1:]
    if not words:
        return False
    start = " ".join(words[:2])
    if any(start.startswith(r) for r in lx.REQUEST_STARTS):
        return False
    if words[0] in lx.QUESTION_WORDS:
        return True
    # "remove the dog?" is a request; "the dog is on the left?" is not an edit anyway.
    return "?" in terminator and _match_verb(words) is None


def _clauses(sentence: str) -> list[list[str]]:
    """Split at separators that are followed (after more separators) by a verb."""
    words = _tokens(sentence)
    out: list[list[str]] = []
    current: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in lx.SEPARATORS or (w == "after" and i + 1 < len(words) and words[i + 1] == "that"):
            j = i
            while j < len(words) and (
                words[j] in lx.SEPARATORS or words[j : j + 2] == ["after", "that"]
            ):
                j += 2 if words[j] == "after" else 1
            if j < len(words) and (words[j] in lx.VERB_FIRST or words[j] in lx.CHAT_STARTS):
                if current:
                    out.append(current)
                current = []
                i = j
                continue
            # No verb after this run of separators: keep them, and never rescan the run.
            current.extend(words[i:j])
            i = j
            continue
        current.append(w)
        i += 1
    if current:
        out.append(current)
    return out


def _match_verb(words: list[str]) -> tuple[tuple[str, ...], list[str]] | None:
    for n in (3, 2, 1):
        key = tuple(words[:n])
        if len(key) == n and key in lx.VERBS:
            return key, words[n:]
    return None


# -- targets (the object of an edit) ------------------------------------------------------------
def _clean_phrase(text: str) -> str:
    words = text.replace(",", " ").split()
    while words and words[0] in lx.ARTICLES | {"all", "of", "every", "both", "new"}:
        words = words[1:]
    return " ".join(words)


def _is_deictic(text: str) -> bool:
    words = [w for w in text.split() if w not in {"the", "one", "object", "thing", "please"}]
    return not words or all(w in lx.DEICTIC for w in words)


def _parse_target(text: str) -> tuple[str, Select]:
    """'the dog on the left' -> ('dog', 'left'); 'the cat and the dog' -> ('cat. dog', 'all')."""
    select: Select = "all"
    text = lx.IMAGE_TAIL.sub("", text)
    m = lx.SELECT_TAIL.search(text)
    if m:
        select = lx.SELECT_WORDS[m.group("pos")]
        text = text[: m.start()]
    names: list[str] = []
    for part in _target_parts(text):
        words = _clean_phrase(part).split()
        while words and words[0] in lx.SELECT_WORDS and len(words) > 1:
            select = lx.SELECT_WORDS[words[0]]
            words = words[1:]
            while words and words[0] in {"one", "of", "the"} and len(words) > 1:
                words = words[1:]
        if words:
            names.append(" ".join(words))
    return ". ".join(names), select


def _target_parts(text: str) -> list[str]:
    """'the dog, then the cat and the bird' -> ['the dog', 'the cat', 'the bird']."""
    return [p for p in lx.TARGET_SPLIT.split(text) if p.strip()]


def _mask_for(state: _State, target: str, what: str) -> MaskRef:
    """Steps that make the target's mask; returns the reference the edit step uses."""
    ctx = state.ctx
    if _is_deictic(target):
        if state.segmented:
            return "previous"
        if ctx.has_visual_prompt and not state.visual_used:
            state.visual_used = True
            _add(state, ctx.visual_segment())
            return "previous"
        if ctx.has_mask:
            return "last"
        raise _Ask(f"What should I {what}? Name it, or click on it in the image.")
    text, select = _parse_target(target)
    if not text or _is_deictic(text):  # "the one on the left": which kind of thing?
        raise _Ask(f"What should I {what}? Name it, or click on it in the image.")
    step = SegmentStep(text=text[:256], select=select)
    if ctx.has_visual_prompt and not state.visual_used:
        # A click/box with a named object says which one: both go to segmentation.
        state.visual_used = True
        visual = ctx.visual_segment()
        step = visual.model_copy(update={"text": text[:256], "select": select})
    _add(state, step)
    return "previous"


def _add(state: _State, step: Step) -> None:
    if len(state.steps) >= MAX_STEPS:
        raise _Ask(f"That is more than {MAX_STEPS} steps at once: please split it up.")
    if not (state.width and state.height) and step.tool != "generate":
        raise _Ask(NO_IMAGE)
    state.steps.append(step)
    if step.tool == "segment":
        state.segmented = True
    elif step.tool == "generate":
        state.width, state.height = GENERATE_SIZE
        state.segmented = False


def _need_image(state: _State) -> tuple[int, int]:
    if not (state.width and state.height):
        raise _Ask(NO_IMAGE)
    return state.width, state.height


# -- one parser per verb family -----------------------------------------------------------------
def _remove(state: _State, rest: str) -> None:
    _need_image(state)
    parts = _target_parts(lx.IMAGE_TAIL.sub("", rest))
    if len(parts) > 1 and any(_parse_target(p)[1] != "all" for p in parts):
        # "the car on the right and the tree on the left": one mask each, each its own select.
        for part in parts:
            _add(state, RemoveStep(mask=_mask_for(state, part, "remove")))
        return
    ref = _mask_for(state, rest, "remove")
    _add(state, RemoveStep(mask=ref))


def _split_once(text: str, seps: tuple[str, ...]) -> tuple[str, str] | None:
    for sep in seps:
        idx = text.find(sep)
        if idx >= 0:
            return text[:idx].strip(), text[idx + len(sep) :].strip()
        if text.startswith(sep.lstrip()):
            return "", text[len(sep.lstrip()) :].strip()
    return None


def _replace(state: _State, verb: str, rest: str) -> bool:
    if (
        verb in ("make", "turn", "paint", "color", "colour")
        and rest.split()[-1:]
        and (rest.split()[-1] in lx.COLOURS)
    ):
        target = " ".join(rest.split()[:-1])
        colour = rest.split()[-1]
        _need_image(state)
        name = _parse_target(target)[0] if not _is_deictic(target) else "object"
        phrase = f"{colour} {name.split('. ')[0]}"
    else:
        if verb == "substitute" and " for " in rest:
            new, old = rest.split(" for ", 1)
            parts: tuple[str, str] | None = (old.strip(), new.strip())
        elif verb in ("replace", "substitute"):
            parts = _split_once(rest, (" with ", " by "))
            if parts is None:
                _need_image(state)
                what = rest if not _is_deictic(rest) else "it"
                raise _Ask(f"What should I replace {what} with?")
        elif verb == "swap":
            parts = _split_once(rest, (" for ", " with "))
        elif verb == "make":
            parts = _split_once(rest, (" into ", " look like ", " a ", " an "))
        elif verb == "change" and rest.startswith("the colo"):
            m = re.match(r"the colou?r of (?P<x>.+?) (?:to|into) (?P<y>\S.*)$", rest)
            if m is None:
                return False
            _need_image(state)
            name = _parse_target(m.group("x"))[0]
            parts = (m.group("x"), f"{m.group('y')} {name}")
        else:  # turn, change, transform, convert
            parts = _split_once(rest, (" into ", " to "))
        if parts is None and verb != "make" and rest:
            _need_image(state)
            what = rest if not _is_deictic(rest) else "it"
            raise _Ask(f"What should I {verb} {what} {'for' if verb == 'swap' else 'into'}?")
        if parts is None:
            return False
        target, phrase = parts
        phrase = _clean_phrase(phrase)
        _need_image(state)
        if not phrase:
            what = target if target and not _is_deictic(target) else "it"
            raise _Ask(f"What should I replace {what} with?")
    ref = _mask_for(state, target, "replace")
    _add(state, ReplaceStep(mask=ref, phrase=phrase[:256]))
    return True


def _amount(kind: str | float | None, size: int) -> float:
    if kind is None:
        return MOVE_DEFAULT * size
    if kind == "small":
        return MOVE_SMALL * size
    if kind == "large":
        return MOVE_LARGE * size
    assert not isinstance(kind, str)
    return kind if kind >= 0 else -kind / 100 * size  # negative encodes a percentage


def _motion(words: list[str]) -> int | None:
    """Index where the trailing motion phrase ('a bit to the left', 'by 30 px up') starts."""
    ok_from = len(words)
    for i in range(len(words) - 1, -1, -1):
        w = words[i]
        if not (w in lx.DIRECTIONS or w in lx.SMALL or w in lx.LARGE or w in lx.UNITS
                or w in lx.MOTION_FILLERS or w.replace(".", "", 1).isdigit()):  # fmt: skip
            break
        ok_from = i
    # Direction words at or after each index (one pass, so this stays linear).
    later = [False] * (len(words) + 1)
    for i in range(len(words) - 1, ok_from - 1, -1):
        later[i] = later[i + 1] or words[i] in lx.DIRECTIONS
    for i in range(ok_from, len(words)):
        w = words[i]
        starter = w in lx.DIRECTIONS or w in lx.MOTION_STARTERS or w[0].isdigit()
        prev_ok = i == 0 or words[i - 1] not in {"on", "in", "at", "the", "of", "to"}
        if starter and prev_ok and later[i]:
            return i
    return None


def _move(state: _State, rest: str) -> None:
    width, height = _need_image(state)
    words = _tokens(rest)
    start = _motion(words)
    target = " ".join(words[:start] if start is not None else words)
    if _is_deictic(target) and not (
        state.segmented or state.ctx.has_visual_prompt or state.ctx.has_mask
    ):
        raise _Ask("What should I move? Name it, or click on it in the image.")
    if start is None:
        what = target if target and not _is_deictic(target) else "it"
        raise _Ask(f"Which way should I move {what} (left, right, up, down), and how far?")
    entries: list[tuple[int, int, str | float | None]] = []  # (axis, sign, amount)
    pending: str | float | None = None
    attach = False
    tail = words[start:]
    for i, w in enumerate(tail):
        amount: str | float | None = None
        if w in lx.DIRECTIONS:
            axis, sign = lx.DIRECTIONS[w]
            entries.append((axis, sign, pending))
            pending, attach = None, True
            continue
        if w[0].isdigit():
            unit = tail[i + 1] if i + 1 < len(tail) else ""
            amount = -float(w) if unit in ("%", "percent") else float(w)
        elif w in lx.SMALL:
            amount = "small"
        elif w in lx.LARGE:
            amount = "large"
        elif w not in {"by", "a", "about", "around"} and w not in lx.UNITS:
            attach = False
            continue
        if amount is not None:
            if attach and entries and entries[-1][2] is None:
                entries[-1] = (entries[-1][0], entries[-1][1], amount)
            else:
                pending = amount
    dx = dy = 0.0
    for axis, sign, amt in entries:
        size = width if axis == 0 else height
        value = max(1.0, _amount(amt, size)) * float(sign)
        if axis == 0:
            dx += value
        else:
            dy += value
    if abs(dx) >= width or abs(dy) >= height:
        raise _Ask(f"That would move it off the image ({width}x{height} px): how far, in pixels?")
    ref = _mask_for(state, target, "move")
    _add(state, MoveStep(mask=ref, dx=round(dx), dy=round(dy)))


def _grid_box(place: str, width: int, height: int) -> list[float]:
    words = place.replace("-", " ").split()
    col, row = 1, 1
    for w in words:
        c, r = lx.GRID[w]
        if w in ("left", "right"):
            col = c
        else:
            row = r
    return [round(col * width / 3), round(row * height / 3),
            round((col + 1) * width / 3), round((row + 1) * height / 3)]  # fmt: skip


def _point_box(point: list[float], width: int, height: int) -> list[float]:
    w, h = width / 3, height / 3
    x = min(max(point[0], w / 2), width - w / 2)
    y = min(max(point[1], h / 2), height - h / 2)
    return [round(x - w / 2), round(y - h / 2), round(x + w / 2), round(y + h / 2)]


def _add_objects(state: _State, rest: str) -> None:
    width, height = _need_image(state)
    items = [p for p in re.split(r"\s*,\s*|\s+and\s+(?=(?:a|an|some|the|one|two)\s)", rest) if p]
    if not items:
        raise _Ask("What should I add?")
    phrases: list[str] = []
    boxes: list[list[float]] = []
    for item in items:
        m = lx.PLACE.search(" " + item)
        if m:
            phrases.append(_clean_phrase(item[: max(0, m.start() - 1)]))
            boxes.append(_grid_box(m.group("place"), width, height))
            continue
        r = lx.RELATION.search(" " + item)
        if r:
            phrase = _clean_phrase(item[: max(0, r.start() - 1)])
            if not phrase:
                raise _Ask("What should I add?")
            ref = _mask_for(state, r.group("anchor"), "put it next to")
            _add(state, InpaintStep(phrases=[phrase[:256]], anchor=ref,
                                    relation=lx.RELATIONS[r.group("rel")]))  # fmt: skip
            continue
        phrase = _clean_phrase(re.sub(r"\s+(?:here|there)$", "", item))
        if not phrase:
            raise _Ask("What should I add?")
        ctx = state.ctx
        if ctx.boxes and not state.visual_used:
            boxes.extend([list(b) for b in ctx.boxes[: len(ctx.boxes)]])
            phrases.extend([phrase] * len(ctx.boxes))
        elif ctx.points and not state.visual_used:
            boxes.extend(_point_box(list(p), width, height) for p in ctx.points)
            phrases.extend([phrase] * len(ctx.points))
        else:
            raise _Ask(
                f"Where should I add {phrase}? Say where (left, top right corner, next to the "
                "tree...) or draw a box."
            )
        state.visual_used = True
    if any(not p for p in phrases):
        raise _Ask("What should I add?")
    if phrases:
        _add(state, InpaintStep(phrases=[p[:256] for p in phrases[:8]], boxes=boxes[:8]))


def _generate(state: _State, verb: str, rest: str) -> bool:
    body = rest.split()
    while body and body[0] in {"me", "us", "a", "an", "new", "another", "the", "one"}:
        body = body[1:]
    has_noun = bool(body) and body[0] in lx.IMAGE_NOUNS
    if has_noun:
        body = body[1:]
        while body and body[0] in {"of", "showing", "with", "that", "shows", "depicting"}:
            body = body[1:]
    elif verb == "make":
        return False
    prompt = " ".join(body) if has_noun else rest
    if not prompt.strip():
        raise _Ask("What should I draw? Describe the image.")
    _add(state, GenerateStep(prompt=prompt[:1000]))
    return True


def _segment(state: _State, rest: str) -> None:
    _need_image(state)
    # "segment it" with only a last mask needs no step: that mask already exists.
    _mask_for(state, rest, "segment")


def _history(state: _State, family: str, rest: list[str]) -> None:
    _need_image(state)
    count = 1
    for w in rest:
        if w.isdigit():
            count = int(w)
        elif w in lx.WORD_NUMBERS:
            count = lx.WORD_NUMBERS[w]
    for _ in range(min(count, MAX_STEPS)):
        _add(state, UndoStep() if family == "undo" else RedoStep())


def _clause(state: _State, words: list[str]) -> None:
    words = _strip_prefixes(words)
    if not words or words[0] in lx.QUESTION_WORDS:
        return
    if words[0] in ("color", "colour"):
        _replace(state, "color", " ".join(words[1:]))
        return
    if words[0] == "take" and words[-1] in ("out", "away") and len(words) > 2:
        _remove(state, " ".join(words[1:-1]))  # "take the dog out"
        return
    found = _match_verb(words)
    if found is None:
        return
    key, rest_words = found
    verb, rest = key[0] if key == ("swap", "out") else " ".join(key), " ".join(rest_words)
    family = lx.VERBS[key]
    if family in ("undo", "redo"):
        _history(state, family, rest_words)
    elif family == "remove":
        _remove(state, rest)
    elif family == "move":
        _move(state, rest)
    elif family == "segment":
        _segment(state, rest)
    elif family == "want":
        # "i want a picture of a horse", "give me an image of ...": only with an image noun.
        _generate(state, "make", rest)
    elif verb in ("generate", "create", "render", "imagine", "produce"):
        _generate(state, verb, rest)
    elif verb in ("draw", "paint", "sketch"):
        if (verb == "paint" and rest_words and rest_words[-1] in lx.COLOURS) and _replace(
            state, verb, rest
        ):
            return
        placed = bool(lx.PLACE.search(" " + rest) or lx.RELATION.search(" " + rest))
        has_image = bool(state.width and state.height)
        # With an image and a place, "draw a cat on the left" adds one; otherwise a new image.
        if has_image and placed and not _generate(state, "make", rest):
            _add_objects(state, rest)
        elif not (has_image and placed):
            _generate(state, "generate", rest)
    elif family == "add":
        _add_objects(state, rest)
    elif verb == "make":
        if not _generate(state, verb, rest):
            _replace(state, verb, rest)
    else:
        _replace(state, verb, rest)


class RulesPlanner:
    """The default planner: the grammar above, in-process, microseconds to a few ms."""

    name = "rules"

    async def plan(self, message: str, context: PlanContext) -> Plan:
        return self.plan_sync(message, context)

    def plan_sync(self, message: str, context: PlanContext) -> Plan:
        state = _State(ctx=context, width=context.width, height=context.height)
        text = message.lower().replace("\u2019", "'")
        pieces = lx.SENTENCE.split(text)
        try:
            # re.split with one group yields [sentence, terminator, sentence, terminator, ...].
            for i in range(0, len(pieces), 2):
                sentence = pieces[i] or ""
                terminator = (pieces[i + 1] or "") if i + 1 < len(pieces) else ""
                if not sentence.strip() or _is_question(sentence, terminator):
                    continue
                for clause in _clauses(sentence):
                    _clause(state, clause)
        except _Ask as ask:
            return Plan(steps=[], clarification=str(ask), planner=self.name)
        return Plan(steps=state.steps, planner=self.name)
