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
