"""Scene graph rules on hand-made boxes, referrals unique in their room, and ``afcli caption`` on the
built-in rooms: captions, referrals and noun phrases for every instance, with embeddings."""

import json
import shutil

import numpy as np

from afcli.caption.graph import SceneObject, build_graph
from afcli.caption.phrases import noun_phrases, rule_phrases
from afcli.caption.referrals import Description, Referral, caption, colour_name, matches, referrals


def obj(i, label, lo, hi, colour="white"):
    return SceneObject(i, label, np.array(lo, float), np.array(hi, float), colour)


def relations(graph, source):
    return {(r.relation, r.targets) for r in graph.of(source)}


ROOM = [
    obj(0, "floor", (0, 0, -0.02), (5, 4, 0)),
    obj(1, "wall", (0, 4, 0), (5, 4.1, 2.6)),
    obj(2, "table", (1, 1, 0), (2.5, 2, 0.75), "brown"),
    obj(3, "cup", (1.2, 1.2, 0.75), (1.3, 1.3, 0.85), "red"),
    obj(4, "cup", (2.2, 1.5, 0.75), (2.3, 1.6, 0.85), "blue"),
    obj(5, "stool", (1.2, 1.1, 0), (1.7, 1.6, 0.6), "black"),  # its footprint within the table's, lower
    obj(6, "picture", (1.5, 3.95, 1.2), (2.2, 4.0, 1.8), "green"),
    obj(7, "box", (1.4, 1.4, 0.7), (1.6, 1.6, 0.8)),  # sunk 5 of 10 cm into the table top: on
    obj(8, "book", (3.5, 1.0, 0), (3.7, 1.2, 0.2)),
    obj(9, "bag", (4.0, 1.0, 0), (4.2, 1.2, 0.2)),
    obj(10, "lamp", (3.75, 1.0, 0), (3.95, 1.2, 0.5)),  # between the book and the bag
    obj(11, "shelf", (4.5, 2.5, 0), (5, 3.5, 1.0)),
    obj(12, "box", (4.6, 2.6, 0.1), (4.9, 3.4, 0.9)),  # inside the shelf
    obj(13, "cabinet", (1.6, 3.5, 0), (2.1, 4.0, 0.8)),  # against the wall, under the picture
]


def test_support_hanging_under_and_between():
    graph = build_graph(ROOM)
    assert ("on", (2,)) in relations(graph, 3) and ("on", (0,)) in relations(graph, 2)
    assert ("on", (2,)) in relations(graph, 7)
    assert ("inside", (11,)) in relations(graph, 12)
    assert ("on the wall", ()) in relations(graph, 6) and ("above", (13,)) in relations(graph, 6)
    assert ("under", (2,)) in relations(graph, 5)
    assert relations(graph, 1) == set()  # walls are left out of relations, as SceneVerse does
    assert ("in the middle of", (8, 9)) in relations(graph, 10) or ("in the middle of", (9, 8)) in relations(graph, 10)
    clock = {r.relation for r in graph.of(4) if r.targets == (3,)}
    assert clock == {"to the right of"}  # the blue cup is at 3 o'clock of the red one


def test_referrals_are_unique_and_need_unique_anchors():
    graph = build_graph(ROOM)
    for o in ROOM:
        for referral in referrals(graph, o.id):
            assert matches(graph, referral) == {o.id}, referral.text
    # "the cup on the table" names two cups: never produced, and matches says so
    assert matches(graph, Referral(3, Description("cup"), "on", (Description("table"),), (2,))) == {3, 4}
    texts = [r.text for r in referrals(graph, 3, limit=10)]
    assert "the cup on the table" not in texts and "the red cup on the table" in texts
    assert "the box on the table" in [r.text for r in referrals(graph, 7, limit=10)]


def test_caption_and_colour_names():
    graph = build_graph(ROOM)
    assert caption(graph, 3) == "a red cup on a brown table"
    assert caption(graph, 6) == "a green picture on the wall"
    palette = {"red": (200, 40, 40), "white": (235, 235, 235)}
    shaded = np.array([[200, 40, 40]] * 10 + [[100, 20, 20]] * 10)  # half of it in shadow
    assert colour_name(shaded, palette) == "red"


def test_noun_phrases_rules_and_spacy():
    text = "the red cup on the white kitchen counter"
    assert rule_phrases(text, ["cup", "counter", "kitchen counter"], ["red", "white"]) == [
        "the red cup",
        "the white kitchen counter",
    ]
    from afcli.caption.phrases import spacy_available

    if spacy_available():
        assert noun_phrases([text], "spacy") == [["the red cup", "the white kitchen counter"]]


def test_caption_writes_texts_for_every_instance(rooms, afcli_run):
    from afcli.caption.graph import build_graph as graph_of
    from afcli.caption.stage import scene_objects
    from afcli.data.furniture import COLOURS
    from afcli.store.schema import open_store
    from afcli.store.texts import read_texts

    store = rooms / "template-captions.h5"
    shutil.copy(rooms / "store.h5", store)
    result = json.loads(afcli_run("--json", "caption", store, "--phrases", "rules", check=0).stdout)
    assert result["captioned"] == 3 and result["referrals"] > 0
    manifest = json.loads((rooms / "rooms.json").read_text())
    agree = total = 0
    with open_store(store) as f:
        table = read_texts(f)
        assert table.embeddings["minilm-l6"].shape == (len(table.rows), 384)
        np.testing.assert_allclose(np.linalg.norm(table.embeddings["minilm-l6"], axis=1), 1, atol=1e-2)
        for row, room in enumerate(manifest["rooms"]):
            objects = scene_objects(f, row, COLOURS)
            graph = graph_of(objects)
            texts = [table.rows[i] for i in table.of(row)]
            for instance in room["instances"]:
                mine = [t for t in texts if t.target == instance["id"]]
                assert {t.kind for t in mine} == {"caption", "referral"}, instance
                assert all(t.phrases for t in mine)
                agree += graph.objects[instance["id"]].colour == instance["colour"]
                total += 1
            # each referral names exactly its target: re-read its words against every object
            by_text = {r.text: r for o in objects for r in referrals(graph, o.id, limit=10)}
            for t in texts:
                if t.kind == "referral":
                    assert matches(graph, by_text[t.text]) == {t.target}, t.text
    assert agree / total > 0.8  # colours named from vertex colours agree with the rooms' own
    again = json.loads(afcli_run("--json", "caption", store, check=0).stdout)
    assert again["captioned"] == 0 and again["already_done"] == 3


def test_sceneverse_texts_join_the_table(tmp_path, afcli_run):
    from formats import write_scannet_scans

    from afcli.data.scenes import import_scenes
    from afcli.store.schema import open_store
    from afcli.store.texts import read_texts

    write_scannet_scans(tmp_path / "scannet")
    import_scenes(tmp_path / "scannet", tmp_path / "s.h5")
    refer = tmp_path / "ssg_ref_rel2_template.json"
    refer.write_text(json.dumps([
        {"item_id": "r1", "scan_id": "scene0000_00", "target_id": 2, "instance_type": "office chair",
         "utterance": "the office chair is close to the coffee table"},
        {"item_id": "r2", "scan_id": "scene9999_00", "target_id": 1, "utterance": "another scene's wall"},
    ]))  # fmt: skip
    captions = tmp_path / "ssg_obj_caption_gpt.json"
    captions.write_text(json.dumps([{"scan_id": "scene0000_00", "target_id": 3, "utterance": "a low wooden table"}]))
    result = json.loads(
        afcli_run(
            "--json", "caption", tmp_path / "s.h5", "--phrases", "rules", "--texts", refer, "--texts", captions, check=0
        ).stdout
    )
    assert result["imported_texts"] == 2
    with open_store(tmp_path / "s.h5") as f:
        rows = {r.id: r for r in read_texts(f).rows}
    given = rows["scene0000_00:ssg_ref_rel2_template:referral:r1"]
    assert (given.target, given.source, given.phrases) == (
        2,
        "ssg_ref_rel2_template",
        ["the office chair", "the coffee table"],
    )
    assert rows["scene0000_00:ssg_obj_caption_gpt:caption:0"].kind == "caption"
    captions.write_text(json.dumps([{"scan_id": "scene0000_00", "utterance": "no target"}]))
    assert "target_id" in afcli_run("caption", tmp_path / "s.h5", "--overwrite", "--texts", captions, check=2).stderr


def test_rows_of_like_objects_are_in_line():
    floor = obj(0, "floor", (0, 0, -0.02), (6, 6, 0))
    row = [
        obj(i, "chair", (1.0 + 0.01 * i, y, 0), (1.5 + 0.01 * i, y + 0.5, 0.9))
        for i, y in ((1, 1.0), (2, 2.0), (3, 3.0))
    ]
    stray = obj(4, "chair", (3.0, 1.0, 0), (3.5, 1.5, 0.9))  # another x
    big = obj(5, "table", (0.8, 4.0, 0), (2.0, 5.2, 0.75))  # on the line, but no like footprint
    graph = build_graph([floor, *row, stray, big])
    assert ("in line with", (2, 3)) in relations(graph, 1) and ("in line with", (1, 2)) in relations(graph, 3)
    assert not any(r.relation == "in line with" for r in graph.of(4) + graph.of(5))
