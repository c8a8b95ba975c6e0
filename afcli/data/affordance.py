"""Affordance vocabulary, LASO-style questions and the rule that turns labelled parts into heat maps.

Heat-map rule (used for every mesh with part labels): for affordance ``a`` let ``P_a`` be the sampled
points on parts offering ``a``. A point ``p`` gets ``h_a(p) = exp(-d(p, P_a)^2 / (2 sigma^2))`` where
``d`` is the Euclidean distance to the nearest point of ``P_a`` in the normalised (unit-sphere)
frame; so ``h = 1`` on the part and decays smoothly across its boundary. ``sigma = 0.04`` (2 % of
the object's diameter) and values below ``1e-3`` are set to 0 to keep maps sparse. This mimics the
soft boundaries of PIAD's and LASO's annotations, which were propagated from part labels too.
"""

from __future__ import annotations

import numpy as np
import torch

# PIAD's 17 channels, in the column order of its point files (IAGNet dataset_PIAD.py).
PIAD_AFFORDANCES = [
    "grasp", "contain", "lift", "open", "lay", "sit", "support", "wrapgrasp", "pour",
    "move", "display", "push", "listen", "wear", "press", "cut", "stab",
]  # fmt: skip

# LASO's 18 affordances (its data_utils index order) and PIADv2's 24 (GREAT), as their files spell them.
LASO_AFFORDANCES = [
    "lay", "sit", "support", "grasp", "lift", "contain", "open", "wrap_grasp", "pour",
    "move", "display", "push", "pull", "listen", "wear", "press", "cut", "stab",
]  # fmt: skip
PIADV2_AFFORDANCES = PIAD_AFFORDANCES + ["carry", "ride", "clean", "play", "beat", "speak", "pull"]

HEAT_SIGMA = 0.04
HEAT_FLOOR = 1e-3

_QUESTIONS = {
    "grasp": [
        "Which part of the {o} would you hold to pick it up?",
        "Where should I grab the {o}?",
        "Which part of the {o} is made to be gripped by a hand?",
        "If you wanted to hold the {o} firmly, where would your fingers go?",
        "Which part of the {o} would you reach for to grasp it?",
    ],
    "contain": [
        "Which part of the {o} holds what you put into it?",
        "Where would things go when you fill the {o}?",
        "Which region of the {o} can contain something?",
        "Where does the {o} keep its contents?",
        "Which part of the {o} would you fill up?",
    ],
    "lift": [
        "Which part of the {o} would you hold to lift it?",
        "Where do you take the {o} to carry it up?",
        "By which part would you raise the {o} off the floor?",
        "Which part of the {o} is for lifting it?",
    ],
    "open": [
        "Which part of the {o} do you use to open it?",
        "Where would you act on the {o} to open it?",
        "Which part of the {o} opens?",
        "To open the {o}, which part would you turn or pull?",
    ],
    "lay": [
        "Where on the {o} would you lie down?",
        "Which part of the {o} is for lying on?",
        "Where would you rest your body flat on the {o}?",
    ],
    "sit": [
        "Which part of the {o} would you sit on?",
        "Where do you sit on the {o}?",
        "Which surface of the {o} takes your weight when you sit?",
        "Where does a person sit on the {o}?",
    ],
    "support": [
        "Which part of the {o} supports things placed on it or leaning against it?",
        "Where does the {o} bear weight?",
        "Which part of the {o} would you lean on or put objects on?",
        "Which part of the {o} gives support?",
    ],
    "wrapgrasp": [
        "Where would you wrap your hand around the {o}?",
        "Which part of the {o} would you hold with your whole hand around it?",
        "Where do your fingers close around the {o}?",
        "Which part of the {o} fits in a wrapping grip?",
    ],
    "pour": [
        "Which part of the {o} would liquid come out of when you pour?",
        "Where does the {o} pour from?",
        "Which part of the {o} would you tilt toward a cup to pour?",
        "From which edge of the {o} would the contents flow out?",
    ],
    "move": [
        "Which part of the {o} would you take hold of to move it?",
        "Where would you push or drag the {o} to move it?",
        "Which part of the {o} touches the floor when you move it?",
    ],
    "display": [
        "Which part of the {o} shows images?",
        "Where does the {o} display its content?",
        "Which side of the {o} would you look at?",
    ],
    "push": [
        "Which part of the {o} would you push?",
        "Where would you press your hand to push the {o}?",
        "Which surface of the {o} is meant to be pushed?",
        "Where should force go to push the {o}?",
    ],
    "listen": [
        "Which part of the {o} do you listen through?",
        "Where does sound come from on the {o}?",
        "Which part of the {o} goes to your ear?",
    ],
    "wear": [
        "Which part of the {o} goes on your body when you wear it?",
        "Where does the {o} sit when it is worn?",
        "Which part of the {o} would fit on your head?",
        "Which part of the {o} do you put on?",
    ],
    "press": [
        "Which part of the {o} would you press?",
        "Where do you push down on the {o}?",
        "Which keys or buttons of the {o} are pressed?",
    ],
    "cut": [
        "Which part of the {o} would you cut with?",
        "Where is the cutting edge of the {o}?",
        "Which part of the {o} slices through things?",
        "Which part of the {o} should touch the food you cut?",
        "Which part of the {o} is sharp enough to cut?",
    ],
    "stab": [
        "Which part of the {o} would you stab with?",
        "Where is the point of the {o}?",
        "Which part of the {o} pierces things?",
        "Which end of the {o} would go in first if you stabbed?",
    ],
}


def default_question(affordance: str, category: str) -> str:
    """The LASO loaders' fallback when a pair has no questions."""
    return f"Where can I {affordance.replace('_', ' ')} this {category.lower()}?"


def questions_for(category: str, affordance: str, rng: np.random.Generator) -> list[str]:
    """3–5 distinct questions about ``affordance`` on a ``category``, in a seeded order."""
    templates = _QUESTIONS[affordance]
    count = int(rng.integers(3, min(5, len(templates)) + 1))
    chosen = rng.choice(len(templates), size=count, replace=False)
    return [templates[i].format(o=category.lower()) for i in chosen]


def heat_maps(points: np.ndarray, part_ids: np.ndarray, parts: list[dict], channels: list[str]) -> np.ndarray:
    """(N, K) heat maps in [0, 1] from per-point part ids (see the module docstring for the rule)."""
    from afcli.ops import knn

    maps = np.zeros((len(points), len(channels)), np.float32)
    cloud = torch.from_numpy(np.ascontiguousarray(points, np.float32)).unsqueeze(0)
    for k, channel in enumerate(channels):
        offering = [i for i, part in enumerate(parts) if channel in part["affordances"]]
        on_part = np.isin(part_ids, offering)
        if not on_part.any():
            continue
        _, squared = knn(cloud[:, torch.from_numpy(on_part)], cloud, 1)
        heat = np.exp(-squared[0, :, 0].numpy() / (2 * HEAT_SIGMA**2))
        heat[heat < HEAT_FLOOR] = 0.0
        heat[on_part] = 1.0
        maps[:, k] = heat
    return maps
