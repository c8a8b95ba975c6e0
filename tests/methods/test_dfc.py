"""Dense functional correspondence: the pseudo-labelling rules, the oracle and detector paths of
``afcli pseudolabel``, and ``afcli eval dfc --predictions`` on a hand-made annotation folder."""

import json

import numpy as np
import pytest
import torch

from afcli.pseudolabel.voting import oracle_boxes, otsu, pack, unpack, vote


def test_votes_count_covering_boxes_of_views_with_enough_boxes():
    pixels = torch.tensor([[[1.0, 1.0], [5.0, 5.0], [9.0, 9.0]], [[1.0, 1.0], [5.0, 5.0], [9.0, 9.0]]])
    visible = torch.tensor([[True, True, False], [True, True, True]])
    box = torch.tensor([[0.0, 0.0, 5.0, 5.0]])
    heat = vote(pixels, visible, [box.repeat(3, 1), box.repeat(2, 1)], min_boxes=3)  # view 2 has 2 boxes: skipped
    assert heat.tolist() == [1.0, 1.0, 0.0]  # counts 3, 3, 0 → min-max
    assert vote(pixels, visible, [box.repeat(3, 1), torch.zeros(0, 4)]).tolist() == [1.0, 1.0, 0.0]


def test_otsu_splits_two_levels_and_bits_round_trip():
    image = np.array([10] * 50 + [200] * 50, np.uint8)
    assert 10 <= otsu(image) < 200
    masks = np.random.default_rng(0).random((2, 3, 5, 13)) > 0.5
    assert (unpack(pack(masks), 13) == masks).all()


def test_oracle_without_noise_boxes_the_part():
    part = torch.zeros(10, 10, dtype=torch.bool)
    part[2:5, 3:8] = True
    boxes = oracle_boxes(part, torch.ones(10, 10, dtype=torch.bool), np.random.default_rng(0), 0.0, 4)
    assert boxes.tolist() == [[3.0, 2.0, 7.0, 4.0]] * 4


def test_oracle_labels_carry_provenance_and_quality(dfc_store):
    from afcli.pseudolabel.stage import PseudolabelSettings, pseudolabel_store
    from afcli.store import open_store

    with open_store(dfc_store) as f:
        labels = f["labels/oracle"]
        assert labels.attrs["oracle"] and json.loads(labels.attrs["channels"])[0] == "cut-with"
        assert f["views/sphere/oracle"].shape[1:] == (4, labels.shape[-1], 64, 8)
        assert labels[:].max() == 1.0
    again = pseudolabel_store(dfc_store, PseudolabelSettings(noise=0.1, device="cpu"))
    assert again["processed"] == 0 and again["already_done"] > 0  # resumable: nothing redone


@pytest.fixture(scope="module")
def tiny_owlv2(tmp_path_factory):
    """A random OWLv2 with a byte-level tokenizer, saved and read through transformers' own loaders."""
    import transformers as T
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    folder = tmp_path_factory.mktemp("owlv2")
    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)} | {c + "</w>": len(chars) + i for i, c in enumerate(chars)}
    vocab |= {"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1}
    tokenizer = T.CLIPTokenizer(vocab=vocab, merges=[])
    processor = T.Owlv2Processor(
        image_processor=T.Owlv2ImageProcessor(size={"height": 64, "width": 64}), tokenizer=tokenizer
    )
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    text = dict(
        small,
        vocab_size=len(vocab),
        max_position_embeddings=16,
        bos_token_id=len(vocab) - 2,
        eos_token_id=len(vocab) - 1,
    )
    config = T.Owlv2Config(text_config=text, vision_config=dict(small, image_size=64, patch_size=16), projection_dim=32)
    torch.manual_seed(0)
    T.Owlv2ForObjectDetection(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_detector_path_runs_end_to_end(dfc_store, tiny_owlv2, tmp_path):
    import shutil

    from afcli.pseudolabel.stage import PseudolabelSettings, pseudolabel_store

    store = tmp_path / "store.h5"
    shutil.copy(dfc_store, store)
    result = pseudolabel_store(store, PseudolabelSettings(detector=str(tiny_owlv2), name="owl", device="cpu"))
    assert result["labels"] == "/labels/owl" and result["labelled"] > 0
    assert result["seconds"]["detect"] > 0 and result["overhead"] is not None
    assert set(result["iou"]) <= set(result["functions"]) and result["iou"]  # measured, even if meaningless


def test_missing_detector_is_one_line(dfc_store, afcli_run, tmp_path):
    result = afcli_run("pseudolabel", dfc_store, "--detector", "owlv2", "--offline", check=2)
    assert "google/owlv2-base-patch16-ensemble" in result.stdout + result.stderr


def _hand_made(root):
    """Two 40×40 objects (masks: the left and the right half), one trial of two GT pairs."""
    from PIL import Image

    for obj, cols in (("a---knife", slice(0, 20)), ("b---scissors", slice(20, 40))):
        mask = np.zeros((40, 40), np.uint8)
        mask[:, cols] = 255
        for folder, picture in (
            ("rgb_images_processed", np.zeros((40, 40, 3), np.uint8)),
            ("object_masks_processed", mask),
        ):
            (root / "images" / obj / folder).mkdir(parents=True)
            Image.fromarray(picture).save(root / "images" / obj / folder / "0000.png")
    trial = root / "2d_annotations" / "cut-with" / "a---knife|||b---scissors|||0000" / "trial_0"
    trial.mkdir(parents=True)
    np.save(trial / "a---knife|||0000.png.npy", np.array([[5, 5], [30, 10]]))  # (row, col)
    np.save(trial / "b---scissors|||0000.png.npy", np.array([[5, 25], [30, 30]]))
    return trial


def test_eval_predictions_scores_a_hand_made_trial(tmp_path, afcli_run):
    pairs = tmp_path / "pairs"
    _hand_made(pairs)
    predicted = tmp_path / "pred" / "cut-with" / "a---knife|||b---scissors" / "0000" / "trial_0"
    predicted.mkdir(parents=True)
    # 1→2: the first point exact, the second 30 px off; 2→1: both exact.
    np.save(predicted / "transfer_1to2.npy", np.array([[5, 25], [0, 30]]))
    np.save(predicted / "transfer_2to1.npy", np.array([[5, 5], [30, 10]]))
    for d, (p1, p2) in {
        "1to2": ([[5, 5], [30, 10]], [[5, 25], [30, 30]]),
        "2to1": ([[5, 25], [30, 30]], [[5, 5], [30, 10]]),
    }.items():
        np.savez(
            predicted / f"discovery_{d}.npz", points1=np.array(p1), points2=np.array(p2), scores=np.array([0.9, 0.1])
        )
    result = afcli_run("--json", "eval", "dfc", "--pairs", pairs, "--predictions", tmp_path / "pred", check=0)
    scored = json.loads(result.stdout)["results"][str(tmp_path / "pred")]
    assert scored["entries"] == 2
    assert scored["all"]["pck@23"] == pytest.approx(0.75)  # (1/2 + 2/2) / 2, macro over directions
    assert scored["all"]["dist"] == pytest.approx((30 / 223 / 2 + 0) / 2)
    # Two predictions, both exact: cutoffs below 0.5 keep none (skipped); 0.5-0.99 keep one (P 1, R 1/2,
    # F1 2/3); 1.0 keeps both (P 1, R 1). Best F1 1; AP = 1/2 · 1 + 1/2 · 1.
    assert scored["all"]["f1@23"] == pytest.approx(1.0) and scored["all"]["ap@23"] == pytest.approx(1.0)
    assert "across" in scored and "within" not in scored


@pytest.fixture(scope="module")
def dfc_run(dfc_store, tiny_weights, tmp_path_factory):
    """A DFC head trained for two steps on the oracle labels, tiny DINOv2 as the frozen backbone."""
    from afcli.methods import train
    from afcli.methods.dfc.settings import DFCSettings

    settings = DFCSettings()
    settings.data.store, settings.device = str(dfc_store), "cpu"
    settings.backbone.name, settings.backbone.weights = "dinov2:vits14", str(tiny_weights["dinov2"])
    settings.backbone.blocks, settings.backbone.size = 2, 56
    settings.text.encoder = "minilm-l6"
    settings.model.hidden, settings.data.points, settings.data.min_part_pixels = 32, 8, 4
    settings.epochs, settings.batch_size, settings.steps_per_epoch = 1, 2, 2
    run = tmp_path_factory.mktemp("dfc-run") / "run"
    train("dfc", settings, run, show_progress=False)
    return run


def test_saved_predictions_rescore_to_the_same_numbers(dfc_store, dfc_run, tmp_path, afcli_run):
    """eval dfc on pairs written by data dfc-pairs; its saved correspondences scored by --predictions
    give the run's own numbers (one format, both ways)."""
    pairs = tmp_path / "pairs"
    afcli_run("data", "dfc-pairs", dfc_store, pairs, "--split", "test", "--pairs", "1", "--max-points", "30", check=0)
    assert (pairs / "selected_annotations.json").is_file()
    scored = json.loads(
        afcli_run("--json", "eval", "dfc", "--pairs", pairs, "--checkpoint", dfc_run, "--save-predictions",
                  tmp_path / "pred", "--device", "cpu", check=0).stdout
    )["results"]  # fmt: skip
    named = f"{dfc_run} (pseudo-labels: oracle, noise 0.1)"  # the oracle is named wherever its run is scored
    assert set(scored) == {"chance", "backbone dinov2:vits14 (raw)", named}
    again = json.loads(
        afcli_run("--json", "eval", "dfc", "--pairs", pairs, "--predictions", tmp_path / "pred", check=0).stdout
    )["results"][str(tmp_path / "pred")]
    assert again["all"] == pytest.approx(scored[named]["all"])


def test_correspondence_in_3d_scores_run_backbone_and_chance(dfc_run, afcli_run):
    result = json.loads(
        afcli_run("--json", "eval", "dfc-3d", "--checkpoint", dfc_run, "--pairs", "1", "--max-points", "20",
                  "--device", "cpu", check=0).stdout
    )  # fmt: skip
    rows = result["results"]
    assert set(rows) == {"chance", "backbone dinov2:vits14 (raw)", f"{dfc_run} (pseudo-labels: oracle, noise 0.1)"}
    for row in rows.values():
        assert 0 <= row["all"]["pck@0.05"] <= row["all"]["pck@0.1"] <= row["all"]["pck@0.2"] <= 1


def test_an_empty_target_mask_sends_queries_to_the_origin_and_ties_to_the_first_pixel(tmp_path):
    """The released argmax over heat·mask − 100·(1 − mask): no mask pixel → (0, 0); equal similarities →
    the first mask pixel in raster order."""
    from afcli.data.dfc import Trial
    from afcli.eval.dfc import ViewCache, predict_trial

    cache = ViewCache(tmp_path, lambda rgb, function, pixels: torch.ones(len(pixels), 4) / 2)
    square = np.zeros((8, 8), bool)
    square[2:4, 3:5] = True
    cache._views = {
        ("a", "0"): (None, square, np.argwhere(square)[:, ::-1]),
        ("b", "0"): (None, np.zeros((8, 8), bool), np.zeros((0, 2), int)),
    }
    trial = Trial("cut-with", "a", "b", "0000/trial_0", "0", "0", np.array([[3, 2]]), np.array([[5, 5]]))
    assert predict_trial(trial, cache, "1to2", None)["transfer"].tolist() == [[0, 0]]
    assert predict_trial(trial, cache, "2to1", None)["transfer"].tolist() == [[3, 2]]  # all tie: first in raster order


def test_pseudolabel_needs_kept_renders_and_a_taxonomy(synth_store, dfc_store, afcli_run, tmp_path):
    result = afcli_run("pseudolabel", synth_store, check=2)
    assert "no kept renders /views/sphere" in result.stderr and "--keep-views" in result.stderr
    result = afcli_run("pseudolabel", dfc_store, "--taxonomy", tmp_path / "none.json", check=2)
    assert "no such taxonomy" in result.stderr


@pytest.mark.slow
def test_two_processes_label_what_one_does(dfc_store, tmp_path):
    import shutil

    from afcli.pseudolabel.stage import PseudolabelSettings, pseudolabel_store
    from afcli.store import open_store

    store = tmp_path / "store.h5"
    shutil.copy(dfc_store, store)
    pseudolabel_store(store, PseudolabelSettings(noise=0.1, name="two", device="cpu"), gpus=2)
    with open_store(dfc_store) as one, open_store(store) as two:
        assert np.array_equal(one["labels/oracle"][:], two["labels/two"][:])
        assert np.array_equal(one["views/sphere/oracle"][:], two["views/sphere/two"][:])


@pytest.fixture(scope="module")
def tiny_grounding_dino(tmp_path_factory):
    """A random Grounding DINO (Swin + BERT, one phrase per forward) with a character vocabulary."""
    import transformers as T

    folder = tmp_path_factory.mktemp("gdino")
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "."] + list(letters) + ["##" + c for c in letters]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    processor = T.GroundingDinoProcessor(
        image_processor=T.GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 128}),
        tokenizer=T.BertTokenizer(str(folder / "vocab.txt")),
    )
    swin = T.SwinConfig(
        embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4, image_size=128,
        out_features=["stage2", "stage3", "stage4"],
    )  # fmt: skip
    bert = T.BertConfig(
        vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    config = T.GroundingDinoConfig(
        backbone_config=swin, text_config=bert, d_model=32, encoder_layers=1, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=10,
        encoder_n_points=2, decoder_n_points=2, use_timm_backbone=False, use_pretrained_backbone=False, max_text_len=32,
    )  # fmt: skip
    torch.manual_seed(0)
    T.GroundingDinoForObjectDetection(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_grounding_dino_boxes_each_phrase(tiny_grounding_dino):
    from afcli.detectors import Detector

    detector = Detector(str(tiny_grounding_dino))
    assert detector.grounding
    found = detector.detect(np.zeros((64, 64, 3), np.uint8), ["the blade", "a handle"], top=4)
    assert len(found) == 2 and all(len(d.boxes) == 4 for d in found)
    for d in found:
        assert (d.boxes[:, :2] <= d.boxes[:, 2:]).all() and (d.boxes >= 0).all() and (d.boxes <= 63).all()
        assert ((d.scores >= 0) & (d.scores <= 1)).all() and (d.scores[:-1] >= d.scores[1:]).all()


def test_function_text_through_clip_text_tower(tiny_weights):
    """The paper's conditioning: CLIP's encode_text of the bare function words, L2-normalised."""
    from afcli.data.taxonomy import prompt_text
    from afcli.prompts import sentence_embeddings

    assert prompt_text("pick up-with") == "pick up with"
    vectors = sentence_embeddings("clip:ViT-B-32@openai", ["cut with", "pour with"], weights=str(tiny_weights["clip"]))
    assert vectors.shape == (2, 16) and torch.allclose(vectors.norm(dim=-1), torch.ones(2))
    assert not torch.allclose(vectors[0], vectors[1])


def test_predicted_masks_restrict_transfer_and_rank_the_part_first(tmp_path):
    """--pred-mask: the transfer argmax runs over the target's predicted part only; discovery runs on
    the parts and on the rest separately and ranks every part pair above every other pair."""
    from afcli.data.dfc import Trial
    from afcli.eval.dfc import ViewCache, predict_trial

    def features(rgb, function, pixels):  # similarity falls with the column: left pixels match best
        return torch.nn.functional.normalize(
            torch.stack([torch.ones(len(pixels)), torch.as_tensor(pixels[:, 0]) / 10.0], 1), dim=-1
        )

    def masks(rgb, function, pixels):  # the right half is the predicted part
        return pixels[:, 0] >= 4

    full = np.ones((8, 8), bool)
    cache = ViewCache(tmp_path, features, masks)
    cache._views = {(o, "0"): (None, full, np.argwhere(full)[:, ::-1]) for o in ("a", "b")}
    trial = Trial("cut-with", "a", "b", "0000/trial_0", "0", "0", np.array([[0, 0]]), np.array([[1, 1]]))
    plain = predict_trial(trial, cache, "1to2", None)
    masked = predict_trial(trial, cache, "1to2", None, pred_mask=True)
    assert plain["transfer"][0, 0] < 4 <= masked["transfer"][0, 0]  # the argmax moved into the predicted part
    order = np.argsort(-masked["scores"], kind="stable")
    in_part = masked["points1"][order][:, 0] >= 4
    assert in_part[: in_part.sum()].all()  # every part pair ranks above the rest


@pytest.mark.slow
def test_two_gloo_processes_follow_one(dfc_store, tiny_weights, tmp_path):
    """Every DFC loss term is a mean over equal halves of the batch, so two processes log one's curve."""
    from afcli.engine.distributed import Launch
    from afcli.methods import train
    from afcli.methods.dfc.settings import DFCSettings

    def settings():
        s = DFCSettings(epochs=1, batch_size=4, steps_per_epoch=3, device="cpu")
        s.data.store, s.text.encoder = str(dfc_store), "minilm-l6"
        s.backbone.name, s.backbone.weights, s.backbone.blocks, s.backbone.size = (
            "dinov2:vits14",
            str(tiny_weights["dinov2"]),
            2,
            56,
        )
        s.model.hidden, s.data.points, s.data.min_part_pixels = 32, 8, 4
        return s

    one = train("dfc", settings(), tmp_path / "one", show_progress=False)
    two = train("dfc", settings(), tmp_path / "two", plan=Launch(gpus=2), show_progress=False)
    assert len(one["history"]) == len(two["history"]) == 3
    for a, b in zip(one["history"], two["history"]):
        assert a["total"] == pytest.approx(b["total"], rel=1e-4)


def test_bad_inputs_are_one_line(synth_store, tmp_path, afcli_run):
    result = afcli_run(
        "finetune", "dfc", "--store", synth_store, "--run", tmp_path / "run", "--text", "minilm-l6", check=2
    )
    assert "no pseudo-labels /labels/oracle" in result.stderr and not (tmp_path / "run").exists()
    result = afcli_run("eval", "dfc", "--pairs", tmp_path / "nowhere", "--predictions", tmp_path, check=2)
    assert "no such annotation folder" in result.stderr
    trial = _hand_made(tmp_path / "pairs")
    (trial / "b---scissors|||0000.png.npy").write_bytes(b"not numpy")
    result = afcli_run("eval", "dfc", "--pairs", tmp_path / "pairs", "--predictions", tmp_path, check=2)
    assert "unreadable annotation" in result.stderr and "b---scissors|||0000.png.npy" in result.stderr
