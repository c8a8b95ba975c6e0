"""PIAD images, boxes and lists, on files written in PIAD's format and on the real demo files."""

import numpy as np
import pytest
from formats import write_piad_lists

from afcli.data.piad import image_affordance, read_boxes, read_lists
from afcli.errors import InputError


def test_demo_annotations(any_piad_demo):
    from PIL import Image

    assert image_affordance(any_piad_demo / "Img_Test_Chair_sit_1.jpg") == "sit"
    assert image_affordance(any_piad_demo / "Img_Test_Bag_lift_1.jpg") == "lift"
    for name in ("Img_Test_Chair_sit_1", "Img_Test_Bag_lift_1"):
        boxes = read_boxes(any_piad_demo / f"{name}.json")
        assert set(boxes) == {"subject", "object"}
        width, height = Image.open(any_piad_demo / f"{name}.jpg").size
        for x1, y1, x2, y2 in boxes.values():
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height  # corners sorted, inside the image


def test_lists_pair_line_by_line(tmp_path, piad_demo):
    (tmp_path / "Seen").mkdir()
    for kind, name in (
        ("Img", "Img_Test_Chair_sit_1.jpg"),
        ("Point", "Point_Test_Chair_1.txt"),
        ("Box", "Img_Test_Chair_sit_1.json"),
    ):
        (tmp_path / "Seen" / f"{kind}_Test.txt").write_text(f"{piad_demo / name}\n")
    lists = read_lists(tmp_path, "Seen", "Test")
    assert lists["Point"][0] == piad_demo / "Point_Test_Chair_1.txt"
    (tmp_path / "Seen" / "Box_Test.txt").write_text("")
    with pytest.raises(InputError, match="pair line by line"):
        read_lists(tmp_path, "Seen", "Test")
    with pytest.raises(InputError, match="PIAD affordance"):
        image_affordance("Img_Test_Chair_dance_1.jpg")


def test_imported_clouds_are_centred_with_unit_radius(tmp_path, any_piad_demo):
    """As IAGNet's and the CMAT code's loaders do it (pc_normalize): centroid to 0, farthest point at 1."""
    from afcli.data.benchmarks import import_benchmark
    from afcli.data.readers import read_piad
    from afcli.store import open_store

    root = write_piad_lists(tmp_path / "PIAD", any_piad_demo)
    import_benchmark("piad", root, tmp_path / "piad.h5", setting="Seen")
    with open_store(tmp_path / "piad.h5") as f:
        for row, sample in enumerate(f["samples/id"][:].astype(str)):
            points = f["points/xyz"][row].astype(np.float64)
            assert np.allclose(points.mean(0), 0, atol=1e-5)
            assert np.isclose(np.linalg.norm(points, axis=1).max(), 1, atol=1e-5)
            original = read_piad(any_piad_demo / f"{sample.split('/')[-1]}.txt")[1].vertices
            transform = f["samples/transform"][row]
            assert np.allclose(points * transform[3] + transform[:3], original, atol=1e-4)  # recorded exactly
