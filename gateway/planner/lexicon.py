"""Word lists and patterns of the rules planner's grammar (see gateway/planner/rules.py).

Every pattern here is anchored or a plain alternation, so matching is linear in the text.
"""

from __future__ import annotations

import re

from gateway.planner.steps import Relation, Select


def words(text: str) -> frozenset[str]:
    """``"a|b c|d"`` -> the set of those words (kept as one string so the lists stay short)."""
    return frozenset(text.split("|"))


SENTENCE = re.compile(r"([.!?;]+)(?=\s|$)|\n+")
TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z]+(?:['-][a-z]+)*|[%,]")
WORD_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "once": 1, "twice": 2, "thrice": 3,
}  # fmt: skip

# Politeness and framing stripped from the start of a clause (longest first).
PREFIXES = sorted(
    (
        p.split()
        for p in words(
            "please|pls|plz|kindly|now|ok|okay|so|also|just|then|and|first|finally|next"
            "|lastly|after that|afterwards|hey|hi|can you|could you|would you|will you"
            "|can u|could u|can we|could we|i want you to|i'd like you to"
            "|i would like you to|i need you to|i want to|i'd like to|i would like to"
            "|i wanna|i need to|let's|lets|let us|go ahead and|try to|help me|you should"
            "|we should|you can|you could|maybe|perhaps|quickly|simply|actually"
        )
    ),
    key=len,
    reverse=True,
)
# The prefixes by their first word, so stripping a long run of them stays cheap.
PREFIXES_BY_FIRST: dict[str, list[list[str]]] = {}
for _p in PREFIXES:
    PREFIXES_BY_FIRST.setdefault(_p[0], []).append(_p)
REQUEST_STARTS = tuple(
    words(
        "can you|could you|would you|will you|can u|could u|please|can we|could we|kindly|pls|plz"
    )
)
QUESTION_WORDS = words(
    "what|what's|whats|how|why|where|when|which|who|whose|whom|is|are|was|were|do"
    "|does|did|should|shall|may|might|can|could|would|will|tell|describe|explain"
    "|count|identify|isn't|aren't|don't|doesn't|i'm|wonder"
)
GREETINGS = words("hey|hi|hello|ok|okay|so|um|well|now|,")
ARTICLES = words("the|a|an|this|that|these|those|some|my|his|her|its|their|our|your")
DEICTIC = words(
    "it|this|that|them|these|those|here|there|one|object|selection|selected|mask"
    "|thing|highlighted|segmented"
)
IMAGE_NOUNS = words(
    "image|picture|photo|photograph|painting|drawing|illustration|sketch|render"
    "|portrait|scene|pic|artwork"
)
COLOURS = words(
    "red|orange|yellow|green|blue|purple|violet|pink|black|white|gray|grey|brown"
    "|golden|gold|silver|beige|turquoise|cyan|magenta"
)

# Verb -> family. Multi-word verbs are tuples of tokens.
VERBS: dict[tuple[str, ...], str] = {}
for _family, _words in {
    "remove": "remove|erase|delete|get rid of|take out|take away|eliminate|cut out|wipe out",
    "replace": "replace|swap out|swap|substitute|turn|change|transform|convert|make",
    "move": "move|shift|drag|push|slide|nudge|relocate",
    "add": "add|put|insert|place|draw|paint|sketch",
    "generate": "generate|create|render|imagine|produce|make|draw|paint",
    "segment": "segment|select|mask|outline|highlight|find|locate|detect|isolate",
    "undo": "undo|revert|go back|step back|roll back|undo that",
    "redo": "redo|go forward|redo that",
    "want": "i want|i need|i'd like|i would like|give me|show me|get me|i'd love",
}.items():
    for _w in _words.split("|"):
        VERBS.setdefault(tuple(_w.split()), _family)
VERB_FIRST = {v[0] for v in VERBS} | {"color", "colour"}
# Words that start a new (non-edit) clause after "and": "remove the dog and tell me ...".
CHAT_STARTS = words("tell|describe|explain|show|what|how|why|where|which|who|is|are")
SEPARATORS = frozenset({",", "and", "then", "also", "afterwards", "finally", "next", "please"})

PLACE = re.compile(
    r"\s+(?:at|in|on|to|into|onto|near|along|towards?|over)\s+(?:the\s+)?(?:very\s+|far\s+)?"
    r"(?P<place>(?:top|bottom|upper|lower)[\s-]+(?:left|right)|(?:left|right)[\s-]+"
    r"(?:top|bottom|upper|lower)|top|bottom|left|right|middle|center|centre|upper|lower)"
    r"(?:[\s-]+(?:hand|corner|side|edge|part|half|area|portion))*"
    r"(?:\s+of\s+(?:the\s+)?(?:image|picture|photo|frame|scene))?$"
)
RELATION = re.compile(
    r"\s+(?P<rel>next to|beside|besides|near|alongside|by|to the left of|left of|"
    r"to the right of|right of|on top of|above|over|below|under|underneath|beneath|on|onto|"
    r"inside|in|into)\s+(?P<anchor>\S.*)$"
)
RELATIONS: dict[str, Relation] = {
    "next to": "next_to", "beside": "next_to", "besides": "next_to", "near": "next_to",
    "alongside": "next_to", "by": "next_to", "to the left of": "left_of", "left of": "left_of",
    "to the right of": "right_of", "right of": "right_of", "on top of": "on", "above": "above",
    "over": "above", "below": "below", "under": "below", "underneath": "below",
    "beneath": "below", "on": "on", "onto": "on", "inside": "in", "in": "in", "into": "in",
}  # fmt: skip
IMAGE_TAIL = re.compile(
    r"\s+(?:from|in|of|on)\s+(?:the|this|my|our|that)\s+"
    r"(?:image|picture|photo|photograph|pic|scene|frame)$"
)
TARGET_SPLIT = re.compile(r"\s*,\s*(?:and\s+)?(?:then\s+)?|\s+and\s+(?:then\s+)?|\s+then\s+")
GRID = {
    "left": (0, 1), "right": (2, 1), "top": (1, 0), "upper": (1, 0), "bottom": (1, 2),
    "lower": (1, 2), "middle": (1, 1), "center": (1, 1), "centre": (1, 1),
}  # fmt: skip
SELECT_WORDS: dict[str, Select] = {
    "left": "left", "leftmost": "left", "left-most": "left", "right": "right",
    "rightmost": "right", "right-most": "right", "top": "top", "topmost": "top", "upper": "top",
    "bottom": "bottom", "bottommost": "bottom", "lower": "bottom", "middle": "center",
    "center": "center", "centre": "center", "central": "center", "biggest": "largest",
    "largest": "largest", "bigger": "largest", "larger": "largest", "big": "largest",
    "smallest": "smallest", "smaller": "smallest", "tiniest": "smallest",
}  # fmt: skip
SELECT_TAIL = re.compile(
    r"\s+(?:on|to|at|in)\s+(?:the\s+)?(?:far\s+)?(?P<pos>left|right|top|bottom|middle|center|"
    r"centre)(?:[\s-]+(?:hand|side|edge|corner))*$"
)

DIRECTIONS = {
    "left": (0, -1), "leftward": (0, -1), "leftwards": (0, -1), "right": (0, 1),
    "rightward": (0, 1), "rightwards": (0, 1), "up": (1, -1), "upward": (1, -1),
    "upwards": (1, -1), "higher": (1, -1), "down": (1, 1), "downward": (1, 1),
    "downwards": (1, 1), "lower": (1, 1), "top": (1, -1), "bottom": (1, 1),
}  # fmt: skip
SMALL = words("bit|little|slightly|tad|touch|smidge")
LARGE = words("lot|far|much|way")
UNITS = words("px|pixel|pixels|percent|%")
MOTION_FILLERS = words(
    "by|to|the|a|and|towards|toward|about|around|some|side|of|image|picture|frame"
    "|edge|then|more|further"
)
MOTION_STARTERS = words("by|to|towards|toward|a|slightly|far|further")
