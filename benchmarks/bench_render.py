"""Render throughput (views/s) per backend: a ~20k-face mesh and a 2048-point cloud, 12 views at
224². Reference: the other backend on the same asset."""

import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _timing import median_seconds  # noqa: E402

from afcli.render import Shape, embree_available, make_rig, render  # noqa: E402


def torus():
    import trimesh

    mesh = trimesh.creation.torus(0.6, 0.25, major_sections=128, minor_sections=80)  # 20,480 faces
    mesh.apply_transform(trimesh.transformations.rotation_matrix(0.5, [1, 0, 0]))
    return mesh


def main() -> None:
    torch.manual_seed(0)
    mesh = torus()
    cameras = make_rig("sphere", 12, 224)
    shape = Shape(torch.tensor(mesh.vertices, dtype=torch.float32), torch.tensor(mesh.faces))
    cloud = Shape(torch.tensor(mesh.sample(2048, seed=0), dtype=torch.float32))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print("| asset | backend | device | 12 views | views/s |")
    print("|---|---|---|---|---|")
    for device in devices:
        cases = [("mesh 20,480 faces", "torch", shape), ("points 2048", "torch", cloud)]
        if device == "cpu" and embree_available():
            cases.insert(0, ("mesh 20,480 faces", "embree", shape))
        for name, backend, asset in cases:
            moved = Shape(asset.vertices.to(device), None if asset.faces is None else asset.faces.to(device))

            def run():
                views = render(moved, cameras, backend=backend)
                if device == "cuda":
                    torch.cuda.synchronize()
                return views

            seconds = median_seconds(run, repeats=5, warmup=1)
            print(f"| {name} | {backend} | {device} | {seconds * 1000:.0f} ms | {12 / seconds:.0f} |")


if __name__ == "__main__":
    main()
