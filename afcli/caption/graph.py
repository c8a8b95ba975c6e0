"""A scene graph by SceneVerse's rules (``preprocess/ssg``; ../shared/reference/sole-mpec.md §2.4), from
each instance's axis-aligned box. z is up; a fixed viewer stands on the -y side looking along +y, so
+x is "right" and +y "behind".

- **support** (B on A): A's footprint larger, B's footprint centre inside it, ``B.z_min ≥ A.z_min`` and
  ``B.z_min − A.z_max < 0.2 · height(B)``; ``|gap| / height(B)`` < 0.8 is "on", < 0.95 "embedded in",
  else "inside". On the floor: ``B.z_min < floor.z_max`` (+ 5 cm here: built-in rooms stand exactly on
  the floor's top). Of several supporters the one whose top is nearest B's bottom is kept (SceneVerse
  keeps the highest; with axis-aligned boxes a chair back rising above a table would then hold the
  cups standing on the table).
- **hanging**: an unsupported object (not a table, chair, desk or bottle) hangs on the wall, and is
  "above" the lower objects its footprint overlaps.
- **proximity** between objects on the same supporter: three or more of B's footprint corners inside
  A's (B lower) is "under", one or two "close to"; otherwise B's direction from A as a clock position
  (12 = behind, 3 = right), near or far (far beyond 1.5 × the sum of their footprints' half-diagonals),
  read as "to the right of" (2–4 o'clock), "behind" (11–1), "to the left of" (8–10), "in front of" (5–7).
- **between**: B is in the middle of A and C when both are near siblings at opposite clock positions.
- **aligned**: three or more objects whose centres lie within 6.5 cm of one line along x or y, with
  similar footprints (area ratio ≥ 0.8) and bases (within 10 cm): each is "in line with" the others.

SceneVerse leaves walls, ceilings, doors and door frames out of the graph; they stay here as nodes
without relations, so that captions still cover them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

UNRELATED = ("wall", "ceiling", "door", "doorframe", "object")
NOT_HANGING = ("floor", "table", "chair", "desk", "bottle")
FLOOR_TOLERANCE = 0.05
ALIGNED_OFFSET = 0.065  # metres between centres across the row (SceneVerse's threshold)
ALIGNED_AREA_RATIO = 0.8  # footprints "similar" (afcli's reading; the threshold is not released)
ALIGNED_HEIGHT = 0.1  # bases "at the same height" (afcli's reading)
SIDES = {3: "to the right of", 2: "to the right of", 4: "to the right of", 9: "to the left of", 8: "to the left of",
         10: "to the left of", 12: "behind", 11: "behind", 1: "behind", 6: "in front of", 5: "in front of",
         7: "in front of"}  # fmt: skip


@dataclass
class SceneObject:
    id: int
    label: str
    lo: np.ndarray  # (3,) box min
    hi: np.ndarray  # (3,) box max
    colour: str | None = None

    @property
    def centre(self) -> np.ndarray:
        return (self.lo + self.hi) / 2

    @property
    def area(self) -> float:
        return float(np.prod(self.hi[:2] - self.lo[:2]))

    @property
    def height(self) -> float:
        return float(self.hi[2] - self.lo[2])

    @property
    def half_diagonal(self) -> float:
        return float(np.linalg.norm(self.hi[:2] - self.lo[:2]) / 2)

    def contains_xy(self, point: np.ndarray) -> bool:
        return bool((point[:2] >= self.lo[:2]).all() and (point[:2] <= self.hi[:2]).all())


@dataclass(frozen=True)
class Relation:
    source: int  # the object the sentence is about
    relation: str  # "on", "embedded in", "inside", "on the wall", "above", "under", "close to", "to the left of" …
    targets: tuple[int, ...]  # anchors (none for "on the wall")
    clock: int | None = None
    near: bool | None = None


@dataclass
class SceneGraph:
    objects: dict[int, SceneObject]
    relations: list[Relation] = field(default_factory=list)
    supporter: dict[int, int] = field(default_factory=dict)

    def of(self, source: int) -> list[Relation]:
        return [r for r in self.relations if r.source == source]


def _clock(source: SceneObject, target: SceneObject) -> int:
    dx, dy = target.centre[:2] - source.centre[:2]
    angle = np.degrees(np.arctan2(dx, dy)) % 360  # 0 = +y (behind, 12 o'clock), clockwise towards +x
    hour = int(round(angle / 30)) % 12
    return 12 if hour == 0 else hour


def _corners_inside(inner: SceneObject, outer: SceneObject) -> int:
    corners = [np.array([x, y]) for x in (inner.lo[0], inner.hi[0]) for y in (inner.lo[1], inner.hi[1])]
    return sum(outer.contains_xy(c) for c in corners)


def build_graph(objects: list[SceneObject]) -> SceneGraph:
    graph = SceneGraph({o.id: o for o in objects})
    related = [o for o in objects if o.label not in UNRELATED]
    for b in related:
        if b.label == "floor":
            continue
        best: tuple[float, SceneObject, str] | None = None  # (|gap|, supporter, kind)
        for a in related:
            if a.id == b.id:
                continue
            gap = float(b.lo[2] - a.hi[2])
            if a.label == "floor":
                kind = "on" if b.lo[2] < a.hi[2] + FLOOR_TOLERANCE else None
            elif a.area > b.area and a.contains_xy(b.centre) and b.lo[2] >= a.lo[2] and gap < 0.2 * b.height:
                ratio = abs(gap) / max(b.height, 1e-9)
                kind = "on" if ratio < 0.8 else "embedded in" if ratio < 0.95 else "inside"
            else:
                kind = None
            if kind is not None and (best is None or abs(gap) < best[0]):
                best = (abs(gap), a, kind)
        if best is not None:
            graph.supporter[b.id] = best[1].id
            graph.relations.append(Relation(b.id, best[2], (best[1].id,)))
        elif b.label not in NOT_HANGING:
            graph.relations.append(Relation(b.id, "on the wall", ()))
            for other in related:
                overlap = (np.minimum(b.hi[:2], other.hi[:2]) > np.maximum(b.lo[:2], other.lo[:2])).all()
                if other.id != b.id and other.label != "floor" and overlap and other.hi[2] < b.lo[2]:
                    graph.relations.append(Relation(b.id, "above", (other.id,)))
    siblings: dict[int, list[SceneObject]] = {}
    for child, parent in graph.supporter.items():
        siblings.setdefault(parent, []).append(graph.objects[child])
    for group in siblings.values():
        for a in group:
            near_by_clock = {}
            for b in group:
                if a.id == b.id:
                    continue
                inside = _corners_inside(b, a)
                if inside >= 3 and b.hi[2] < a.hi[2]:
                    graph.relations.append(Relation(b.id, "under", (a.id,)))
                elif inside >= 1:
                    graph.relations.append(Relation(b.id, "close to", (a.id,)))
                else:
                    clock = _clock(a, b)
                    near = float(np.linalg.norm(b.centre[:2] - a.centre[:2])) <= 1.5 * (
                        a.half_diagonal + b.half_diagonal
                    )
                    graph.relations.append(Relation(b.id, SIDES[clock], (a.id,), clock, near))
                    if near:
                        near_by_clock.setdefault(_clock(a, b), []).append(b)
            for hour, first in near_by_clock.items():
                opposite = near_by_clock.get((hour + 6 - 1) % 12 + 1, [])
                for left in first:
                    for right in opposite:
                        if left.id < right.id:
                            graph.relations.append(Relation(a.id, "in the middle of", (left.id, right.id)))
    _aligned(graph, [o for o in related if o.label != "floor"])
    return graph


def _aligned(graph: SceneGraph, objects: list[SceneObject]) -> None:
    """Rows of three or more like objects on one line (SceneVerse's "aligned"): each says it is in
    line with the others of its row."""
    for axis in (0, 1):
        linked = {o.id: {o.id} for o in objects}
        for a in objects:
            for b in objects:
                similar = min(a.area, b.area) >= ALIGNED_AREA_RATIO * max(a.area, b.area)
                if (
                    a.id < b.id
                    and abs(a.centre[axis] - b.centre[axis]) < ALIGNED_OFFSET
                    and similar
                    and abs(a.lo[2] - b.lo[2]) < ALIGNED_HEIGHT
                ):
                    merged = linked[a.id] | linked[b.id]
                    for member in merged:
                        linked[member] = merged
        for row in {frozenset(group) for group in linked.values() if len(group) >= 3}:
            for member in sorted(row):
                graph.relations.append(Relation(member, "in line with", tuple(sorted(row - {member}))))
