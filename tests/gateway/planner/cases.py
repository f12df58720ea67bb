"""The planner's test set: messages, the session state they come with, and the expected plan.

Each case: (message, context name, expected). Expected is a list of (tool, key args) checked in
order (every key given must equal the step's value exactly; unlisted args are not checked), or
``ASK`` + a substring of the clarification, or ``[]`` (no action: plain chat).
Contexts: a 900x600 head image (grid cells are 300x200; a default move is 20 % of the axis:
180 px across, 120 px down; "a bit" 5 %: 45/30; "a lot" 40 %: 360/240).
"""

from __future__ import annotations

from typing import Any

from gateway.planner.steps import PlanContext

W, H = 900, 600
CONTEXTS: dict[str, PlanContext] = {
    "img": PlanContext(width=W, height=H),
    "none": PlanContext(),
    "mask": PlanContext(width=W, height=H, has_mask=True),
    "click": PlanContext(width=W, height=H, points=[[100, 200]], labels=[1]),
    "box": PlanContext(width=W, height=H, boxes=[[10, 20, 110, 220]]),
    "stroke": PlanContext(width=W, height=H, stroke=True),
}
ASK = "ask"
P = "previous"
Case = tuple[str, str, Any]


def seg(text: str, select: str = "all") -> tuple[str, dict[str, Any]]:
    return ("segment", {"text": text, "select": select})


def rm(mask: str = P) -> tuple[str, dict[str, Any]]:
    return ("remove", {"mask": mask})


def rep(phrase: str, mask: str = P) -> tuple[str, dict[str, Any]]:
    return ("replace", {"phrase": phrase, "mask": mask})


def mv(dx: int, dy: int, mask: str = P) -> tuple[str, dict[str, Any]]:
    return ("move", {"dx": dx, "dy": dy, "mask": mask})


def add(phrases: list[str], boxes: list[Any]) -> tuple[str, dict[str, Any]]:
    return ("inpaint", {"phrases": phrases, "boxes": boxes, "anchor": None})


def near(phrase: str, relation: str) -> tuple[str, dict[str, Any]]:
    return ("inpaint", {"phrases": [phrase], "anchor": P, "relation": relation})


def gen(prompt: str) -> tuple[str, dict[str, Any]]:
    return ("generate", {"prompt": prompt})


UNDO: tuple[str, dict[str, Any]] = ("undo", {})
REDO: tuple[str, dict[str, Any]] = ("redo", {})
CLICK = ("segment", {"points": [[100, 200]], "labels": [1], "text": None})
BOX = ("segment", {"boxes": [[10, 20, 110, 220]], "text": None})
STROKE = ("segment", {"stroke": True, "text": None})
LEFT, RIGHT, TOP, BOTTOM = (
    [0, 200, 300, 400],
    [600, 200, 900, 400],
    [300, 0, 600, 200],
    [300, 400, 600, 600],
)
TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT, BOTTOM_RIGHT = (
    [0, 0, 300, 200],
    [600, 0, 900, 200],
    [0, 400, 300, 600],
    [600, 400, 900, 600],
)
CENTER = [300, 200, 600, 400]

CASES: list[Case] = [
    # -- remove: phrasings -------------------------------------------------------------------
    ("remove the dog", "img", [seg("dog"), rm()]),
    ("Remove the dog.", "img", [seg("dog"), rm()]),
    ("erase the car", "img", [seg("car"), rm()]),
    ("delete the person", "img", [seg("person"), rm()]),
    ("get rid of the trash can", "img", [seg("trash can"), rm()]),
    ("take out the bird please", "img", [seg("bird"), rm()]),
    ("take the bird away", "img", [seg("bird"), rm()]),
    (
        "Hey, could you get rid of the man in the red shirt?",
        "img",
        [seg("man in the red shirt"), rm()],
    ),
    ("Please remove the dog!", "img", [seg("dog"), rm()]),
    ("remove the dog?", "img", [seg("dog"), rm()]),
    ("remove the dog please and thank you", "img", [seg("dog"), rm()]),
    ("could you remove the red car?", "img", [seg("red car"), rm()]),
    ("Can you please erase the lamp", "img", [seg("lamp"), rm()]),
    ("i'd like you to delete the tree", "img", [seg("tree"), rm()]),
    ("REMOVE THE DOG", "img", [seg("dog"), rm()]),
    ("remove the dog on the left", "img", [seg("dog", "left"), rm()]),
    ("remove the leftmost dog", "img", [seg("dog", "left"), rm()]),
    ("erase the biggest tree", "img", [seg("tree", "largest"), rm()]),
    ("remove the smallest boat", "img", [seg("boat", "smallest"), rm()]),
    ("delete the person on the right side", "img", [seg("person", "right"), rm()]),
    ("remove the cloud at the top", "img", [seg("cloud", "top"), rm()]),
    ("remove the cat in the middle", "img", [seg("cat", "center"), rm()]),
    ("remove all the dogs", "img", [seg("dogs"), rm()]),
    ("Remove the dog from the picture", "img", [seg("dog"), rm()]),
    ("erase the dog in this picture", "img", [seg("dog"), rm()]),
    ("remove the dog, then the cat", "img", [seg("dog. cat"), rm()]),
    (
        "remove the car on the right and the tree on the left",
        "img",
        [seg("car", "right"), rm(), seg("tree", "left"), rm()],
    ),
    ("get rid of the bird and the plane", "img", [seg("bird. plane"), rm()]),
    ("remove this", "click", [CLICK, rm()]),
    ("remove it", "box", [BOX, rm()]),
    ("erase that", "stroke", [STROKE, rm()]),
    ("remove it", "mask", [rm("last")]),
    ("delete this object", "mask", [rm("last")]),
    ("remove the dog", "click", [("segment", {"text": "dog", "points": [[100, 200]]}), rm()]),
    # -- replace ---------------------------------------------------------------------------
    ("replace the cat with a tiger", "img", [seg("cat"), rep("tiger")]),
    ("replace the dog by a fox", "img", [seg("dog"), rep("fox")]),
    ("turn the horse into a zebra", "img", [seg("horse"), rep("zebra")]),
    ("change the car to a bus", "img", [seg("car"), rep("bus")]),
    ("change the apple into an orange", "img", [seg("apple"), rep("orange")]),
    ("swap the apple for a pear", "img", [seg("apple"), rep("pear")]),
    ("swap the cup with a glass", "img", [seg("cup"), rep("glass")]),
    ("swap out the chair for a stool", "img", [seg("chair"), rep("stool")]),
    ("make the dog a cat", "img", [seg("dog"), rep("cat")]),
    ("make the sofa into a bed", "img", [seg("sofa"), rep("bed")]),
    (
        "please replace the left chair with a red armchair",
        "img",
        [seg("chair", "left"), rep("red armchair")],
    ),
    ("replace it with a dragon", "click", [CLICK, rep("dragon")]),
    ("replace with a cat", "box", [BOX, rep("cat")]),
    ("make the dog look like a wolf", "img", [seg("dog"), rep("wolf")]),
    ("make it a robot", "mask", [rep("robot", "last")]),
    ("turn the car red", "img", [seg("car"), rep("red car")]),
    ("paint the wall blue", "img", [seg("wall"), rep("blue wall")]),
    ("change the color of the bike to green", "img", [seg("bike"), rep("green bike")]),
    ("substitute a tulip for the rose", "img", [seg("rose"), rep("tulip")]),
    # -- move -------------------------------------------------------------------------------
    ("move the dog left", "img", [seg("dog"), mv(-180, 0)]),
    ("move the dog to the right", "img", [seg("dog"), mv(180, 0)]),
    ("shift the cat up", "img", [seg("cat"), mv(0, -120)]),
    ("drag the ball down", "img", [seg("ball"), mv(0, 120)]),
    ("move the dog to the top", "img", [seg("dog"), mv(0, -120)]),
    ("move left", "click", [CLICK, mv(-180, 0)]),
    ("move the cat a bit to the left", "img", [seg("cat"), mv(-45, 0)]),
    ("move the cat slightly up", "img", [seg("cat"), mv(0, -30)]),
    ("move the boat a lot to the right", "img", [seg("boat"), mv(360, 0)]),
    ("move the dog 50 px to the left", "img", [seg("dog"), mv(-50, 0)]),
    ("move the dog left by 40 pixels", "img", [seg("dog"), mv(-40, 0)]),
    ("move the dog right 30", "img", [seg("dog"), mv(30, 0)]),
    ("move the dog 10% up", "img", [seg("dog"), mv(0, -60)]),
    ("shift the lamp 30 px right and 20 px up", "img", [seg("lamp"), mv(30, -20)]),
    ("move the car left and down", "img", [seg("car"), mv(-180, 120)]),
    ("move the dog on the left to the right", "img", [seg("dog", "left"), mv(180, 0)]),
    ("move the left dog a bit right", "img", [seg("dog", "left"), mv(45, 0)]),
    ("move it up", "click", [CLICK, mv(0, -120)]),
    ("move this a little to the left", "mask", [mv(-45, 0, "last")]),
    ("nudge the cup down by 5 px", "img", [seg("cup"), mv(0, 5)]),
    # -- add (inpaint) ---------------------------------------------------------------------
    ("add a boat on the left", "img", [add(["boat"], [LEFT])]),
    ("add a sun in the top right corner", "img", [add(["sun"], [TOP_RIGHT])]),
    ("put a tree on the right side", "img", [add(["tree"], [RIGHT])]),
    ("insert a bird at the top", "img", [add(["bird"], [TOP])]),
    ("place a rock at the bottom", "img", [add(["rock"], [BOTTOM])]),
    ("add a vase in the center", "img", [add(["vase"], [CENTER])]),
    ("add a cat in the bottom left corner", "img", [add(["cat"], [BOTTOM_LEFT])]),
    ("put a lamp in the upper left corner", "img", [add(["lamp"], [TOP_LEFT])]),
    ("add a dog in the lower right corner of the image", "img", [add(["dog"], [BOTTOM_RIGHT])]),
    ("add a dog on the left and a cat on the right", "img", [add(["dog", "cat"], [LEFT, RIGHT])]),
    ("add a bench next to the tree", "img", [seg("tree"), near("bench", "next_to")]),
    ("put a hat on the cat", "img", [seg("cat"), near("hat", "on")]),
    ("add a ball under the table", "img", [seg("table"), near("ball", "below")]),
    ("insert a moon above the house", "img", [seg("house"), near("moon", "above")]),
    ("add a flower here", "box", [add(["flower"], [[10, 20, 110, 220]])]),
    ("add a balloon", "click", [add(["balloon"], [[0, 100, 300, 300]])]),
    ("draw a cat on the left", "img", [add(["cat"], [LEFT])]),
    # -- generate --------------------------------------------------------------------------
    ("draw an image of a cat on a sofa", "none", [gen("a cat on a sofa")]),
    ("generate a picture of a mountain lake at sunset", "none", [gen("a mountain lake at sunset")]),
    ("create an image of two dogs playing", "img", [gen("two dogs playing")]),
    ("make a photo of a red bicycle", "none", [gen("a red bicycle")]),
    ("draw a cat on a sofa", "none", [gen("a cat on a sofa")]),
    ("paint me a picture of a castle", "none", [gen("a castle")]),
    ("generate a cat and a dog on a beach", "none", [gen("a cat and a dog on a beach")]),
    ("draw a forest", "img", [gen("a forest")]),
    ("I want a picture of a horse", "none", [gen("a horse")]),
    ("give me an image of a lighthouse in a storm", "img", [gen("a lighthouse in a storm")]),
    ("draw a cat and then move it left", "none", (ASK, "What should I move")),
    # -- undo / redo ------------------------------------------------------------------------
    ("undo", "img", [UNDO]),
    ("Undo that.", "img", [UNDO]),
    ("go back", "img", [UNDO]),
    ("undo twice", "img", [UNDO, UNDO]),
    ("undo the last 3 edits", "img", [UNDO, UNDO, UNDO]),
    ("redo", "img", [REDO]),
    ("please redo that", "img", [REDO]),
    # -- several clauses -------------------------------------------------------------------
    (
        "remove the dog and replace the cat with a tiger",
        "img",
        [seg("dog"), rm(), seg("cat"), rep("tiger")],
    ),
    ("remove the dog then move the cat left", "img", [seg("dog"), rm(), seg("cat"), mv(-180, 0)]),
    ("segment the cat, then remove it", "img", [seg("cat"), rm()]),
    (
        "replace the cat with a dog and move it up a bit",
        "img",
        [seg("cat"), rep("dog"), mv(0, -30)],
    ),
    (
        "Remove the car. Then add a tree on the left.",
        "img",
        [seg("car"), rm(), add(["tree"], [LEFT])],
    ),
    ("undo and then remove the lamp", "img", [UNDO, seg("lamp"), rm()]),
    ("remove the dog and tell me what is left", "img", [seg("dog"), rm()]),
    (
        "first erase the bird, after that add a plane at the top",
        "img",
        [seg("bird"), rm(), add(["plane"], [TOP])],
    ),
    (
        "draw an image of a beach and add a boat on the right",
        "none",
        [gen("a beach"), ("inpaint", {"phrases": ["boat"], "boxes": [[341, 171, 512, 341]]})],
    ),
    # -- segment ---------------------------------------------------------------------------
    ("segment the dog", "img", [seg("dog")]),
    ("segment", "click", [CLICK]),
    ("select the largest person", "img", [seg("person", "largest")]),
    ("highlight this", "click", [CLICK]),
    # -- questions and descriptions: never edits -------------------------------------------
    ("what is in the image?", "img", []),
    ("how many dogs are there", "img", []),
    ("tell me about the picture", "img", []),
    ("is there anything I should remove?", "img", []),
    ("should I remove the dog?", "img", []),
    ("what would it look like if I removed the car?", "img", []),
    ("describe the scene", "img", []),
    ("The dog is on the left.", "img", []),
    ("I removed the dog yesterday", "img", []),
    ("why is the sky so blue?", "img", []),
    ("hello", "img", []),
    ("", "img", []),
    ("thanks!", "img", []),
    ("how do I move the cat?", "img", []),
    # -- incomplete edits ask back ---------------------------------------------------------
    ("remove", "img", (ASK, "What should I remove")),
    ("remove it", "img", (ASK, "What should I remove")),
    ("remove the one on the left", "img", (ASK, "What should I remove")),
    ("replace the horse", "img", (ASK, "replace the horse with")),
    ("replace the horse with", "img", (ASK, "replace the horse with")),
    ("move the cat", "img", (ASK, "Which way should I move the cat")),
    ("move it left", "img", (ASK, "What should I move")),
    ("add a dog", "img", (ASK, "Where should I add dog")),
    ("add", "img", (ASK, "What should I add")),
    ("draw an image of", "none", (ASK, "What should I draw")),
    ("move the dog 5000 px left", "img", (ASK, "off the image")),
    ("remove the dog and replace the cat", "img", (ASK, "replace the cat with")),
    ("swap the dog", "img", (ASK, "swap the dog for")),
    ("change the background", "img", (ASK, "change the background into")),
    # -- no image --------------------------------------------------------------------------
    ("remove the dog", "none", (ASK, "no image")),
    ("move the cat left", "none", (ASK, "no image")),
    ("add a boat on the left", "none", (ASK, "no image")),
    ("undo", "none", (ASK, "no image")),
    ("replace the cat with a dog", "none", (ASK, "no image")),
    ("what is this?", "none", []),
    ("show me a cat", "img", []),
    ("don't remove the dog", "img", []),
]
