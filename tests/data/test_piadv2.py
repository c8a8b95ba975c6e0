"""PIADv2 lists and point files in the official layout."""

import numpy as np
import pytest

from afcli.data.piadv2 import read_list, read_points
from afcli.errors import InputError


def test_lists_and_points(tmp_path):
    root = tmp_path / "PIADv2"
    cloud = root / "Seen" / "Point" / "Mug" / "m01" / "grasp" / "m01_grasp.npy"
    cloud.parent.mkdir(parents=True)
    data = np.random.default_rng(0).random((2048, 4)).astype(np.float32)
    np.save(cloud, data)
    (root / "Seen" / "Point_test.txt").write_text("Point/Mug/m01/grasp/m01_grasp.npy\n\n")
    (root / "Seen" / "Img_test.txt").write_text("/abs/Img/Mug/m01/grasp/Img_1.jpg\n")
    points = read_list(root, "Seen", "test", "Point")
    assert (
        len(points) == 1 and points[0].object == "Mug" and points[0].affordance == "grasp" and points[0].path == cloud
    )
    images = read_list(root, "Seen", "test", "Img")
    assert str(images[0].path) == "/abs/Img/Mug/m01/grasp/Img_1.jpg"
    xyz, mask = read_points(points[0].path)
    assert np.array_equal(xyz, data[:, :3]) and np.array_equal(mask, data[:, 3])


def test_errors_name_the_file(tmp_path):
    (tmp_path / "Unseen_obj").mkdir()
    with pytest.raises(InputError, match="no val list"):
        read_list(tmp_path, "Unseen_obj", "val", "Point")
    (tmp_path / "Unseen_obj" / "Point_test.txt").write_text("short/path.npy\n")
    with pytest.raises(InputError, match="line 1"):
        read_list(tmp_path, "Unseen_obj", "test", "Point")
    np.save(tmp_path / "bad.npy", np.zeros((5, 3)))
    with pytest.raises(InputError, match=r"expected \(N, 4\)"):
        read_points(tmp_path / "bad.npy")
    with pytest.raises(InputError, match="unknown PIADv2 setting"):
        read_list(tmp_path, "Seen_v3", "test", "Point")
