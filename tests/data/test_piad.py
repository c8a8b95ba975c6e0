"""PIAD images, boxes and lists, on files written in PIAD's format and on the real demo files."""

import pytest

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
