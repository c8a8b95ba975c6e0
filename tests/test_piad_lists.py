"""PIAD images, boxes and lists, on the real demo files."""

import pytest

from afcli.data.piad import image_affordance, read_boxes, read_lists
from afcli.errors import InputError
from conftest import PIAD_DEMO


def test_real_demo_annotations():
    assert image_affordance(PIAD_DEMO / "Img_Test_Chair_sit_1.jpg") == "sit"
    assert image_affordance(PIAD_DEMO / "Img_Test_Bag_lift_1.jpg") == "lift"
    boxes = read_boxes(PIAD_DEMO / "Img_Test_Chair_sit_1.json")
    assert set(boxes) == {"subject", "object"}
    x1, y1, x2, y2 = boxes["object"]
    assert x1 < x2 and y1 < y2 and x2 <= 426 and y2 <= 640  # inside the 426 x 640 image


def test_lists_pair_line_by_line(tmp_path):
    (tmp_path / "Seen").mkdir()
    for kind, name in (("Img", "Img_Test_Chair_sit_1.jpg"), ("Point", "Point_Test_Chair_1.txt"), ("Box", "Img_Test_Chair_sit_1.json")):
        (tmp_path / "Seen" / f"{kind}_Test.txt").write_text(f"{PIAD_DEMO / name}\n")
    lists = read_lists(tmp_path, "Seen", "Test")
    assert lists["Point"][0] == PIAD_DEMO / "Point_Test_Chair_1.txt"
    (tmp_path / "Seen" / "Box_Test.txt").write_text("")
    with pytest.raises(InputError, match="pair line by line"):
        read_lists(tmp_path, "Seen", "Test")
    with pytest.raises(InputError, match="PIAD affordance"):
        image_affordance("Img_Test_Chair_dance_1.jpg")
