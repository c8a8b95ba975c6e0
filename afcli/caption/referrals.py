"""Template captions and referrals from a scene graph (afcli.caption.graph).

SceneVerse releases its graph code but not its sentence templates (sole-mpec.md §2.4); these follow
its relation names. A **caption** describes one object from what is known of it: "a red cup on a white
kitchen counter", "a blue picture on the wall". A **referral** picks one object out of its room:

- relational: "the cup on the kitchen counter", "the chair to the left of the table", "the picture
  above the bed", "the lamp in the middle of the book and the bag";
- by position among objects of its kind: "the wall farthest to the left";
- by name alone, when nothing else in the room shares it: "the refrigerator".

Every referral is kept only if it is unique in its room: :func:`matches` evaluates its description over
every object (same name, and colour when it says one; the same relation to objects matching each anchor's
description), and exactly the target must remain. Anchors are described by name alone when that is
unique in the room, else with their colour; an anchor neither describes is not used (SceneVerse keeps
only referrals with unambiguous anchors).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

from afcli.caption.graph import SceneGraph, SceneObject

POSITIONS = {  # relation → (axis, sign, phrase)
    "leftmost": (0, -1, "farthest to the left"),
    "rightmost": (0, 1, "farthest to the right"),
    "frontmost": (1, -1, "nearest the front"),
    "backmost": (1, 1, "farthest at the back"),
}
POSITION_MARGIN = 0.1  # metres by which the extreme object must lead the next one


@dataclass(frozen=True)
class Description:
    label: str
    colour: str | None = None

    def fits(self, o: SceneObject) -> bool:
        return o.label == self.label and (self.colour is None or o.colour == self.colour)

    def __str__(self) -> str:
        return f"{self.colour} {self.label}" if self.colour else self.label


@dataclass(frozen=True)
class Referral:
    target: int
    description: Description
    relation: str  # a graph relation, a POSITIONS key, or "name"
    anchors: tuple[Description, ...] = ()
    anchor_ids: tuple[int, ...] = ()

    @property
    def text(self) -> str:
        head = f"the {self.description}"
        if self.relation == "name":
            return head
        if self.relation in POSITIONS:
            return f"{head} {POSITIONS[self.relation][2]}"
        if self.relation == "on the wall":
            return f"{head} on the wall"
        anchors = " and ".join(f"the {a}" for a in self.anchors)
        return f"{head} {self.relation} {anchors}"


def _article(phrase: str) -> str:
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def _describe_uniquely(graph: SceneGraph, o: SceneObject) -> Description | None:
    for description in (Description(o.label), Description(o.label, o.colour)):
        if sum(description.fits(other) for other in graph.objects.values()) == 1:
            return description
    return None


def _extreme(graph: SceneGraph, description: Description, relation: str) -> int | None:
    axis, sign, _ = POSITIONS[relation]
    fitting = sorted((sign * o.centre[axis], o.id) for o in graph.objects.values() if description.fits(o))
    if len(fitting) < 2 or fitting[-1][0] - fitting[-2][0] < POSITION_MARGIN:
        return None
    return fitting[-1][1]


def matches(graph: SceneGraph, referral: Referral) -> set[int]:
    """The objects of the room that ``referral``'s words describe."""
    if referral.relation == "name":
        return {o.id for o in graph.objects.values() if referral.description.fits(o)}
    if referral.relation in POSITIONS:
        extreme = _extreme(graph, referral.description, referral.relation)
        return set() if extreme is None else {extreme}
    found = set()
    for o in graph.objects.values():
        if not referral.description.fits(o):
            continue
        for r in graph.of(o.id):
            if r.relation != referral.relation or len(r.targets) != len(referral.anchors):
                continue
            anchors = [graph.objects[t] for t in r.targets]
            if any(all(d.fits(a) for d, a in zip(referral.anchors, order)) for order in permutations(anchors)):
                found.add(o.id)
    return found


def referrals(graph: SceneGraph, target: int, limit: int = 3) -> list[Referral]:
    """Up to ``limit`` referrals unique in the room: relational first, then by position, then by name."""
    o = graph.objects[target]
    candidates = []
    for description in (Description(o.label), Description(o.label, o.colour)):
        for r in graph.of(target):
            anchors = tuple(_describe_uniquely(graph, graph.objects[t]) for t in r.targets)
            if all(a is not None for a in anchors):
                candidates.append(Referral(target, description, r.relation, anchors, r.targets))
        candidates += [Referral(target, description, relation) for relation in POSITIONS]
        candidates.append(Referral(target, description, "name"))
    kept, said = [], set()
    for referral in candidates:
        key = (referral.relation, referral.anchor_ids)  # the colour variant adds nothing when the plain one is kept
        if key not in said and matches(graph, referral) == {target}:
            kept.append(referral)
            said.add(key)
        if len(kept) == limit:
            break
    return kept


def caption(graph: SceneGraph, target: int) -> str:
    """ "a red cup on a white kitchen counter": colour, name and what holds it."""
    o = graph.objects[target]
    words = _article(f"{o.colour} {o.label}" if o.colour else o.label)
    for r in graph.of(target):
        if r.relation in ("on", "embedded in", "inside"):
            anchor = graph.objects[r.targets[0]]
            return (
                f"{words} {r.relation} {_article(f'{anchor.colour} {anchor.label}' if anchor.colour else anchor.label)}"
            )
        if r.relation == "on the wall":
            return f"{words} on the wall"
    return words


def colour_name(rgb: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> str:
    """The palette colour nearest the brighter half of an object's vertex colours (shading darkens the rest)."""
    rgb = np.asarray(rgb, float)
    luminance = rgb @ np.array([0.299, 0.587, 0.114])
    bright = rgb[luminance >= np.median(luminance)]
    centre = np.median(bright, axis=0)
    names = list(palette)
    distances = [np.linalg.norm(centre - np.asarray(palette[n], float)) for n in names]
    return names[int(np.argmin(distances))]
