"""Room segmentation with a sparse-voxel backbone, trained end to end from colour and position: the
check that a backbone (and its ops backend) learns, and the workload of the sparse-convolution benchmark.

Scenes come from a ScanNet store (afcli.data.scenes); each is voxelised (one point per voxel, its
ScanNet20 label the voxel's target), features are RGB in [-1, 1] and xyz (RegionPLC's input).
Scores are the semantic metrics of afcli.metrics.scannet on the voxels of the held-out scenes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from afcli.data.scannet import vocabulary
from afcli.metrics.scannet import SemanticCounts
from afcli.ops.sparse import SparseTensor, voxelize
from afcli.store.schema import decode, open_store, read_sample


@dataclass
class VoxelScene:
    id: str
    split: str
    tensor: SparseTensor
    labels: torch.Tensor  # (M,) ScanNet20 index, -1 ignore


def load_scene_voxels(store: str | Path, voxel_size: float = 0.05) -> list[VoxelScene]:
    scenes = []
    with open_store(store) as f:
        ids, splits = decode(f["samples/id"][:]), decode(f["labels/split"][:])
        for row, (scene, split) in enumerate(zip(ids, splits)):
            xyz = torch.from_numpy(read_sample(f, row, "points/xyz")).float()
            rgb = torch.from_numpy(read_sample(f, row, "points/rgb")).float() / 127.5 - 1
            labels = torch.from_numpy(read_sample(f, row, "labels/semantic20").astype(np.int64))
            voxels = voxelize(xyz, voxel_size)
            features = torch.cat([rgb, xyz - xyz.mean(0)], 1)[voxels.index]
            scenes.append(VoxelScene(scene, split, SparseTensor.from_voxels(features, voxels), labels[voxels.index]))
    return scenes


def train_segmentation(
    backbone: torch.nn.Module, scenes: list[VoxelScene], steps: int = 60, lr: float = 1e-2, seed: int = 0
) -> dict:
    """Backbone + linear classifier over ScanNet20, one training scene per step (Adam); mIoU and
    accuracy on the training scenes (fit) and the validation scenes."""
    torch.manual_seed(seed)
    classes = len(vocabulary("scannet20").ids)
    head = torch.nn.Linear(backbone.config.out_channels, classes)
    model = torch.nn.ModuleDict({"backbone": backbone, "head": head})
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    train = [s for s in scenes if s.split == "train"] or scenes
    losses = []
    model.train()
    for step in range(steps):
        scene = train[step % len(train)]
        logits = head(backbone(scene.tensor).features)
        loss = torch.nn.functional.cross_entropy(logits, scene.labels, ignore_index=-1)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    model.eval()
    result = {"losses": losses}
    with torch.no_grad():
        for part in ("train", "val"):
            counts = SemanticCounts(classes)
            for scene in (s for s in scenes if s.split == part):
                counts.add(head(backbone(scene.tensor).features).argmax(1).numpy(), scene.labels.numpy())
            present = np.nonzero(counts.target)[0].tolist()
            if present:
                scored = counts.scores(present)
                accuracy = counts.intersection.sum() / max(counts.target.sum(), 1)
                result[part] = {"miou": scored["miou"], "accuracy": float(accuracy), "classes": len(present)}
    return result


# -- open-vocabulary probe of lifted features -------------------------------------------------------


@dataclass
class OVProbeSettings:
    features: str  # /features/<id>
    encoder: str = "minilm-l6"  # the text table's embedding column (and the class prompts' encoder)
    prompt: str = "a {} in a scene."  # SOLE's class prompt
    steps: int = 300
    points: int = 4096  # sampled per training scene and step
    lr: float = 1e-2
    temperature: float = 0.07
    seed: int = 0


def _scene_arrays(f, row: int, feature_path: str) -> dict:
    return {
        "features": torch.from_numpy(read_sample(f, row, feature_path).astype(np.float32)),
        "instance": torch.from_numpy(read_sample(f, row, "labels/instance").astype(np.int64)),
        "semantic": read_sample(f, row, "labels/semantic20").astype(np.int64),
    }


def open_vocabulary_probe(store: str | Path, settings: OVProbeSettings, save_predictions: Path | None = None) -> dict:
    """A linear map of lifted per-point features into a text space, trained only from the scenes'
    template captions (each point towards its instance's caption, against the scene's other captions: MPEC's
    entity–language contrast, reduced to one linear layer), then asked for ScanNet20 classes it never
    saw as labels: per point the class prompt of highest cosine. Scored on the validation scenes with
    the foreground protocol (afcli.metrics.scannet), beside chance and a linear probe trained on the
    class labels themselves (the closed-set reference). ``save_predictions`` writes each validation
    scene's (V, 20) scores in the format ``afcli eval scannet --predictions`` reads."""
    from afcli.caption.stage import TEMPLATE
    from afcli.errors import InputError
    from afcli.eval.scannet import FOREGROUND_IGNORE
    from afcli.metrics.scannet import foreground_prediction
    from afcli.prompts import sentence_embeddings
    from afcli.store.texts import read_texts

    torch.manual_seed(settings.seed)
    vocab = vocabulary("scannet20")
    feature_path = f"features/{settings.features}"
    with open_store(store) as f:
        if feature_path not in f:
            raise InputError(f"no /{feature_path} (lift the scenes first)", store)
        table = read_texts(f, store)
        if settings.encoder not in table.embeddings:
            raise InputError(f"the text table has no {settings.encoder} embeddings (caption --encoder)", store)
        ids, splits = decode(f["samples/id"][:]), decode(f["labels/split"][:])
        scenes = []
        for row, (scene, split) in enumerate(zip(ids, splits)):
            arrays = _scene_arrays(f, row, feature_path)
            captions = {t.target: i for i in table.of(row, "caption") if (t := table.rows[i]).source == TEMPLATE}
            arrays.update(id=scene, split=split, captions=captions)
            scenes.append(arrays)
    text = torch.from_numpy(table.embeddings[settings.encoder])
    train = [s for s in scenes if s["split"] == "train"]
    val = [s for s in scenes if s["split"] != "train"]
    if not train or not val:
        raise InputError("the open-vocabulary probe needs train and val scenes", store)
    every = torch.cat([s["features"] for s in train])
    mean, std = every.mean(0), every.std(0).clamp(min=1e-6)
    del every
    dim, text_dim = len(mean), text.shape[1]
    generator = torch.Generator().manual_seed(settings.seed)

    def batches():
        for step in range(settings.steps):
            scene = train[step % len(train)]
            labelled = torch.nonzero(scene["instance"] >= 0).squeeze(1)
            pick = labelled[torch.randint(len(labelled), (min(settings.points, len(labelled)),), generator=generator)]
            yield scene, pick

    projection = torch.nn.Linear(dim, text_dim)
    optimiser = torch.optim.Adam(projection.parameters(), lr=settings.lr)
    for scene, pick in batches():
        targets = sorted(scene["captions"])
        captions = torch.nn.functional.normalize(text[[scene["captions"][t] for t in targets]], dim=-1)
        index = {t: i for i, t in enumerate(targets)}
        target = torch.tensor([index[int(t)] for t in scene["instance"][pick]])
        embedded = torch.nn.functional.normalize(projection((scene["features"][pick] - mean) / std), dim=-1)
        loss = torch.nn.functional.cross_entropy(embedded @ captions.t() / settings.temperature, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    classifier = torch.nn.Linear(dim, len(vocab.ids))  # the closed-set reference: trained on the labels
    optimiser = torch.optim.Adam(classifier.parameters(), lr=settings.lr)
    for scene, pick in batches():
        labels = torch.from_numpy(scene["semantic"])[pick]
        loss = torch.nn.functional.cross_entropy(
            classifier((scene["features"][pick] - mean) / std), labels, ignore_index=-1
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    prompts = [settings.prompt.format(name) for name in vocab.names]
    classes = torch.nn.functional.normalize(sentence_embeddings(settings.encoder, prompts).float().cpu(), dim=-1)
    foreground = [i for i, n in enumerate(vocab.names) if n not in FOREGROUND_IGNORE]
    ignore = [i for i in range(len(vocab.ids)) if i not in foreground]
    counts = {name: SemanticCounts(len(vocab.ids)) for name in ("open vocabulary", "closed-set linear", "chance")}
    if save_predictions is not None:
        save_predictions.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        for scene in val:
            x = (scene["features"] - mean) / std
            scores = {
                "open vocabulary": (torch.nn.functional.normalize(projection(x), dim=-1) @ classes.t()).numpy(),
                "closed-set linear": classifier(x).numpy(),
                "chance": torch.rand(len(x), len(vocab.ids), generator=generator).numpy(),
            }
            target = np.where(np.isin(scene["semantic"], foreground), scene["semantic"], -1)
            for name, values in scores.items():
                counts[name].add(foreground_prediction(values, ignore), target)
            if save_predictions is not None:
                np.save(save_predictions / f"{scene['id']}.npy", scores["open vocabulary"].astype(np.float32))
    rows = {}
    for name, count in counts.items():
        scored = count.scores(foreground)
        rows[name] = {"f_miou": scored["miou"], "f_macc": scored["macc"]}
    present = [i for i in foreground if counts["chance"].target[i] > 0]
    for name, count in counts.items():
        rows[name]["f_miou_present"] = count.scores(present)["miou"]
    return {
        "store": str(store),
        "features": settings.features,
        "encoder": settings.encoder,
        "train_scenes": len(train),
        "val_scenes": len(val),
        "classes_present": [vocab.names[i] for i in present],
        "results": rows,
    }


def room_figure(store: str | Path, path: Path, scene: str | None = None) -> Path:
    """The top-down picture of one scene (the first validation scene by default) with its captions
    (walls and floor unlabelled)."""
    from afcli.caption.stage import TEMPLATE, scene_objects
    from afcli.data.furniture import COLOURS
    from afcli.errors import InputError
    from afcli.render.preview import topdown_figure
    from afcli.store.texts import read_texts

    with open_store(store) as f:
        ids, splits = decode(f["samples/id"][:]), decode(f["labels/split"][:])
        if scene is None:
            scene = next((i for i, s in zip(ids, splits) if s != "train"), ids[0])
        if scene not in ids:
            raise InputError(f"no scene {scene}", store)
        row = ids.index(scene)
        xyz = read_sample(f, row, "points/xyz")
        instance = read_sample(f, row, "labels/instance").astype(np.int64)
        table = read_texts(f, store, embeddings=False)
        named = {o.id: o.label for o in scene_objects(f, row, COLOURS)}
    captions = {
        table.rows[i].target: table.rows[i].text for i in table.of(row, "caption") if table.rows[i].source == TEMPLATE
    }
    muted = {ident for ident, label in named.items() if label in ("wall", "floor", "ceiling")}
    labels = {ident: text for ident, text in captions.items() if ident not in muted}
    return topdown_figure(xyz, instance, labels, path, f"{scene}: instances and their captions", muted=muted)
