"""ScanNet-format scenes: the three readers on hand-written files in their exact layouts, the import into
a ragged store (every label kept), and ``afcli eval scannet --predictions`` end to end."""

import json

import numpy as np
import pytest
from formats import scan_vertex_labels, write_mask3d_scene, write_pointcept_scene, write_scannet_scans

from afcli.data.scannet import find_scenes, vocabulary
from afcli.data.scenes import import_scenes
from afcli.errors import InputError
from afcli.store.schema import decode, open_store, read_sample


def stored(store, scene="scene0000_00"):
    with open_store(store) as f:
        row = decode(f["samples/id"][:]).index(scene)
        names = ["points/xyz", "points/rgb", "points/normal", "labels/segment", "labels/semantic20"]
        names += ["labels/semantic200", "labels/instance", "labels/entity"]
        return {name.split("/")[1]: read_sample(f, row, name) for name in names} | {
            "split": f["labels/split"][row].decode()
        }


def class_counts(index, vocab):
    names = vocabulary(vocab).names
    values, counts = np.unique(index[index >= 0], return_counts=True)
    return {names[v]: int(c) for v, c in zip(values, counts)}


def test_scannet_scan_import_keeps_every_label(tmp_path):
    room = write_scannet_scans(tmp_path / "scannet")
    result = import_scenes(tmp_path / "scannet", tmp_path / "s.h5")
    assert (result["format"], result["imported"]) == ("scans", 1)
    scene = stored(tmp_path / "s.h5")
    nyu40, raw, instance = scan_vertex_labels(room)
    # Counts per class equal the source's, for both vocabularies (the lamp is not a ScanNet20 class).
    assert class_counts(scene["semantic20"], "scannet20") == class_counts(
        vocabulary("scannet20").index(nyu40), "scannet20"
    )
    assert class_counts(scene["semantic200"], "scannet200") == {
        "floor": 96,
        "wall": 144,
        "office chair": 121,
        "coffee table": 121,
        "lamp": 36,
    }
    assert (scene["semantic20"] == -1).sum() == 48 + 36  # the unannotated floor segment and the lamp
    np.testing.assert_array_equal(vocabulary("scannet200").label_ids(scene["semantic200"]), raw)
    np.testing.assert_array_equal(scene["instance"], instance)
    np.testing.assert_array_equal(scene["xyz"], room["vertices"])
    np.testing.assert_array_equal(scene["rgb"], room["colours"])
    assert len(np.unique(scene["segment"])) == len(np.unique(room["segments"]))
    assert scene["split"] == "val"
    floor_normals = scene["normal"][:144]
    np.testing.assert_allclose(np.abs(floor_normals[:, 2]), 1, atol=1e-6)
    # Re-running resumes: nothing left to do.
    assert import_scenes(tmp_path / "scannet", tmp_path / "s.h5")["already_done"] == 1


def test_pointcept_and_mask3d_layouts_read_the_same_scene(tmp_path):
    room = write_scannet_scans(tmp_path / "scannet")
    write_pointcept_scene(tmp_path / "pointcept", room)
    write_mask3d_scene(tmp_path / "mask3d", room)
    import_scenes(tmp_path / "scannet", tmp_path / "scans.h5")
    import_scenes(tmp_path / "pointcept", tmp_path / "pointcept.h5")
    import_scenes(tmp_path / "mask3d", tmp_path / "mask3d.h5")
    scans, pointcept, mask3d = (stored(tmp_path / f"{n}.h5") for n in ("scans", "pointcept", "mask3d"))
    for other in (pointcept, mask3d):
        np.testing.assert_array_equal(other["xyz"], scans["xyz"])
        np.testing.assert_array_equal(other["semantic20"], scans["semantic20"])
        np.testing.assert_array_equal(other["instance"], scans["instance"])
        assert other["split"] == "val"
    np.testing.assert_array_equal(pointcept["semantic200"], scans["semantic200"])
    assert (mask3d["semantic200"] == -1).all()  # NYU40 labels only
    np.testing.assert_array_equal(mask3d["segment"], scans["segment"])
    assert set(np.unique(pointcept["entity"])) == {-1, 0, 1, 2}


def test_mask3d_scannet200_setting_reads_scannet200_ids(tmp_path):
    room = write_scannet_scans(tmp_path / "scannet")
    path = write_mask3d_scene(tmp_path / "mask3d", room)
    array = np.load(path)
    _, raw, _ = scan_vertex_labels(room)
    array[:, 10] = raw
    np.save(path, array)
    import_scenes(tmp_path / "mask3d", tmp_path / "m.h5", setting="scannet200")
    assert class_counts(stored(tmp_path / "m.h5")["semantic200"], "scannet200")["lamp"] == 36


def test_bad_scenes_name_the_file_and_skip_bad_goes_on(tmp_path):
    root = tmp_path / "pointcept"
    room = write_scannet_scans(tmp_path / "scannet")
    write_pointcept_scene(root, room)
    bad = write_pointcept_scene(root, {**room, "scene": "scene0001_00"})
    np.save(bad / "color.npy", np.zeros((5, 3), np.uint8))
    with pytest.raises(InputError, match="color.npy.*5 rows"):
        import_scenes(root, tmp_path / "p.h5")
    result = import_scenes(root, tmp_path / "q.h5", skip_bad=True)
    assert result["imported"] == 1 and result["skipped"][0]["id"] == "scene0001_00"
    (tmp_path / "scannet" / "scannetv2-labels.combined.tsv").unlink()
    with pytest.raises(InputError, match="label map"):
        find_scenes(tmp_path / "scannet")
    with pytest.raises(InputError, match="no ScanNet scenes"):
        find_scenes(tmp_path)


def write_instance_predictions(folder, scene, predictions):
    (folder / "pred_mask").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (mask, label, score) in enumerate(predictions):
        np.savetxt(folder / "pred_mask" / f"{scene}_{i}.txt", mask.astype(int), fmt="%d")
        lines.append(f"pred_mask/{scene}_{i}.txt {label} {score}")
    (folder / f"{scene}.txt").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("truth", ["store", "folder"])
def test_eval_scannet_scores_the_submission_format(tmp_path, truth, afcli_run):
    room = write_scannet_scans(tmp_path / "scannet")
    write_mask3d_scene(tmp_path / "mask3d", room)
    import_scenes(tmp_path / "scannet", tmp_path / "s.h5")
    gt = tmp_path / "s.h5" if truth == "store" else tmp_path / "mask3d" / "instance_gt" / "validation"
    _, _, instance = scan_vertex_labels(room)
    perfect = [(instance == 2, 5, 0.9), (instance == 3, 7, 0.7), (instance == 0, 2, 0.99)]  # floor: not scored
    write_instance_predictions(tmp_path / "pred", "scene0000_00", perfect)
    args = ["eval", "scannet", "--predictions", tmp_path / "pred", "--gt", gt]
    scored = json.loads(afcli_run("--json", *args, check=0).stdout)
    assert (scored["kind"], scored["ap"], scored["ap50"], scored["ap25"]) == ("instance", 1.0, 1.0, 1.0)
    assert scored["classes"]["bed"]["ap"] is None  # no GT: NaN in the evaluator, null in JSON
    assert "floor" not in scored["classes"] and len(scored["classes"]) == 18
    assert len(json.loads(afcli_run("--json", *args, "--classes", "sole", check=0).stdout)["classes"]) == 17
    shown = afcli_run(*args, check=0).stdout
    assert "chair" in shown and "100.0" in shown


def test_eval_scannet_semantic_labels_and_scores(tmp_path, afcli_run):
    room = write_scannet_scans(tmp_path / "scannet")
    import_scenes(tmp_path / "scannet", tmp_path / "s.h5")
    nyu40, _, _ = scan_vertex_labels(room)
    predicted = nyu40.copy()
    predicted[nyu40 == 7] = 5  # every table vertex called chair
    (tmp_path / "labels").mkdir()
    np.savetxt(tmp_path / "labels" / "scene0000_00.txt", predicted, fmt="%d")
    args = ["--json", "eval", "scannet", "--predictions", tmp_path / "labels", "--gt", tmp_path / "s.h5"]
    scored = json.loads(afcli_run(*args, check=0).stdout)
    assert scored["kind"] == "semantic"
    assert scored["classes"]["chair"]["iou"] == pytest.approx(121 / 242)
    assert scored["classes"]["table"]["iou"] == 0.0 and scored["classes"]["wall"]["iou"] == pytest.approx(1.0)
    assert scored["miou"] == pytest.approx((1 + 1 + 0.5) / 20)  # absent classes count 0, as RegionPLC's mean
    assert scored["f_miou"] == pytest.approx(0.5 / 17)
    # Scores: the foreground argmax skips wall / floor / otherfurniture even where they score highest.
    scores = np.zeros((len(nyu40), 20), np.float32)
    index = vocabulary("scannet20").index(nyu40)
    scores[np.arange(len(nyu40)), np.where(index >= 0, index, 0)] = 1
    scores[nyu40 == 5, 0] = 5  # chairs score wall highest, then chair
    np.save(tmp_path / "scores.npy", scores)
    (tmp_path / "scores").mkdir()
    (tmp_path / "scores.npy").rename(tmp_path / "scores" / "scene0000_00.npy")
    args[4] = tmp_path / "scores"
    scored = json.loads(afcli_run(*args, check=0).stdout)
    assert scored["classes"]["chair"]["iou"] == 0.0 and scored["f_miou"] == pytest.approx(2 / 17)


def test_eval_scannet_bad_predictions_exit_2(tmp_path, afcli_run):
    write_scannet_scans(tmp_path / "scannet")
    import_scenes(tmp_path / "scannet", tmp_path / "s.h5")
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "scene0000_00.txt").write_text("pred_mask/missing.txt 5 0.5\n")
    result = afcli_run("eval", "scannet", "--predictions", tmp_path / "pred", "--gt", tmp_path / "s.h5", check=2)
    assert "missing.txt" in result.stderr
    write_instance_predictions(tmp_path / "short", "scene0000_00", [(np.ones(10), 5, 0.5)])
    result = afcli_run("eval", "scannet", "--predictions", tmp_path / "short", "--gt", tmp_path / "s.h5", check=2)
    assert "10 vertices" in result.stderr


def test_eval_scannet200_instances_with_head_common_tail(tmp_path, afcli_run):
    room = write_scannet_scans(tmp_path / "scannet")
    import_scenes(tmp_path / "scannet", tmp_path / "s.h5")
    _, raw, instance = scan_vertex_labels(room)
    predictions = [(instance == i, int(raw[instance == i][0]), 0.9) for i in (2, 3)]  # office chair, coffee table
    write_instance_predictions(tmp_path / "pred", "scene0000_00", predictions)
    args = ["--json", "eval", "scannet", "--predictions", tmp_path / "pred", "--gt", tmp_path / "s.h5"]
    scored = json.loads(afcli_run(*args, "--benchmark", "scannet200", check=0).stdout)
    assert scored["ap"] == 1.0 and len(scored["classes"]) == 198  # wall and floor are not scored
    assert scored["splits"]["head"]["ap"] == 1.0  # office chair and coffee table are head classes
    assert scored["splits"]["tail"]["ap"] is None  # no GT there
