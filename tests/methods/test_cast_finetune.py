"""CAST end to end: benchmark imports into the query table, prompt encoders, fine-tuning with
validation selection and resume, `afcli eval <benchmark>` with saved predictions and figures."""

import json
import pickle

import h5py
import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_CAST
from formats import write_laso, write_piad_lists

from afcli.errors import InputError
from afcli.store import merge_stores, open_store, verify_store
from afcli.store.queries import read_queries


def test_synth_queries(cast_store):
    with open_store(cast_store) as f:
        table = read_queries(f)
        channels = list(f["labels/affordance"].attrs["channels"])
        for r in range(len(table)):
            gt = f["labels/affordance"][table.sample[r]][:, channels.index(table.affordance[r])]
            assert gt.max() == 1.0  # a query asks about an affordance the shape offers
            assert (
                table.image[r].startswith("render:")
                and table.image[r] != f"render:{f['samples/id'][table.sample[r]].decode()}"
            )
            assert len(table.text[r]) >= 3
    assert {"train", "val", "test"} <= set(table.split)
    assert verify_store(cast_store)["ok"]


@pytest.mark.slow
def test_laso_import_filters_and_questions(tmp_path, afcli_cmd):
    root = tmp_path / "LASO_dataset"
    for split in ("train", "val", "test"):
        write_laso(root, split)
    afcli_cmd("data", "import", root, "--benchmark", "laso", "--store", tmp_path / "laso.h5", check=0)
    with open_store(tmp_path / "laso.h5") as f:
        table = read_queries(f)
        assert len(table) == 12 and f["samples/id"].shape[0] == 9  # 4 annotations, 3 shapes per split
        test = table.rows("test")
        assert [table.affordance[r] for r in test] == ["grasp", "cut", "move", "pull"]
        assert table.text[test[0]][0] == "How do I hold the mug? (0)" and len(table.text[test[0]]) == 15
        assert table.text[test[1]] == ["Where can I cut this scissors?"]  # the loaders' template
        row = table.sample[test[1]]
        assert table.sample[test[2]] == row  # one shape, two annotated affordances
        channels = list(f["labels/affordance"].attrs["channels"])
        annotated = f["labels/annotated"][row]
        assert {channels[k] for k in np.flatnonzero(annotated)} == {"cut", "move"}
        objects = pickle.load(open(root / "objects_test.pkl", "rb"))
        points = objects["id1"] - objects["id1"].mean(0)
        np.testing.assert_allclose(f["points/xyz"][row], points / np.linalg.norm(points, axis=1).max(), atol=1e-5)
    again = afcli_cmd("data", "import", root, "--benchmark", "laso", "--store", tmp_path / "laso.h5", "--json", check=0)
    assert json.loads(again.stdout)["new_queries"] == 0  # resumable, nothing duplicated
    with h5py.File(tmp_path / "laso.h5", "r+") as f:  # an append killed before it wrote the ids of its last 3 rows
        for column in ("id", "sample", "object", "affordance", "split", "text", "image"):
            f[f"queries/{column}"].resize(15, axis=0)
        f["queries/sample"][12:] = 7
        f["queries/id"][11] = b""  # and of one row before them
    again = afcli_cmd("data", "import", root, "--benchmark", "laso", "--store", tmp_path / "laso.h5", "--json", check=0)
    assert json.loads(again.stdout)["new_queries"] == 1
    with open_store(tmp_path / "laso.h5") as f:
        assert len(read_queries(f)) == 12
    assert verify_store(tmp_path / "laso.h5")["ok"]
    bad = afcli_cmd("data", "import", root, "--benchmark", "nope", "--store", tmp_path / "x.h5", check=2)
    assert "unknown benchmark" in bad.stderr and not (tmp_path / "x.h5").exists()


@pytest.mark.slow
def test_piad_demo_samples_evaluate_end_to_end(tmp_path, cast_run, afcli_cmd, any_piad_demo):
    """Two PIAD samples (written, and the real ones): imported with their official pairing, then scored by a CAST run
    through image prompts only (its text modality gets the null token)."""
    root = write_piad_lists(tmp_path / "PIAD", any_piad_demo)
    store = tmp_path / "piad.h5"
    afcli_cmd("data", "import", root, "--benchmark", "piad", "--setting", "Seen", "--store", store, check=0)
    with open_store(store) as f:
        table = read_queries(f)
        test = table.rows("test")
        assert [(table.object[r], table.affordance[r]) for r in test] == [("bag", "lift"), ("chair", "sit")]
        ids = [f["samples/id"][table.sample[r]].decode() for r in test]
        assert ids == ["test/Point_Test_Bag_1", "test/Point_Test_Chair_1"]
        assert all(table.sample[r] == -1 or table.split[r] == "val" for r in table.rows("train"))
    run, _ = cast_run
    predictions = tmp_path / "pred.npz"
    result = afcli_cmd(
        "eval",
        "piad",
        "--checkpoint",
        run,
        "--store",
        store,
        "--prompt",
        "image",
        "--save-predictions",
        predictions,
        "--device",
        "cpu",
        "--json",
        check=0,
    )
    scored = json.loads(result.stdout)[0]
    assert scored["queries"] == 2 and scored["prompts"] == ["image"]
    with np.load(predictions) as saved:
        assert saved["pred"].shape == (2, 2048) and list(saved["affordance"]) == ["lift", "sit"]
        from afcli.data.readers import read_piad

        _, geometry = read_piad(any_piad_demo / "Point_Test_Chair_1.txt")
        np.testing.assert_array_equal(saved["gt"][1], geometry.affordance[:, 5])  # the "sit" column
    text_only = afcli_cmd("eval", "piad", "--checkpoint", run, "--store", store, "--prompt", "text", check=2)
    assert "no question" in text_only.stderr


def test_piadv2_import_pairs_training_images_with_a_pool(tmp_path):
    from afcli.data.benchmarks import import_benchmark

    root = tmp_path / "PIADv2"
    rng = np.random.default_rng(0)
    lines = {}
    for split, instances in (("train", ["m1", "m2"]), ("val", ["m3"]), ("test", ["m4"])):
        for kind in ("Point", "Img"):
            entries = []
            for instance in instances:
                for affordance in ("grasp", "contain"):
                    path = (
                        root
                        / "Seen"
                        / kind
                        / "Mug"
                        / instance
                        / affordance
                        / f"{instance}_{affordance}.{'npy' if kind == 'Point' else 'jpg'}"
                    )
                    path.parent.mkdir(parents=True, exist_ok=True)
                    if kind == "Point":
                        np.save(
                            path,
                            np.concatenate([rng.random((2048, 3)), (rng.random((2048, 1)) > 0.7)], 1).astype(
                                np.float32
                            ),
                        )
                    else:
                        from PIL import Image

                        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(path)
                    entries.append(path.relative_to(root / "Seen").as_posix())
            lines[(split, kind)] = entries
            (root / "Seen" / f"{kind}_{split}.txt").write_text("\n".join(entries) + "\n")
    import_benchmark("piadv2", root, tmp_path / "v2.h5", setting="Seen")
    from afcli.methods.cast.data import QueryData

    data = QueryData(tmp_path / "v2.h5", "train", {"text": None, "image": None}, training=True)
    assert len(data) == 4 and all(data.table.sample[r] == -1 for r in data.rows)
    with open_store(tmp_path / "v2.h5") as f:
        ids = [i.decode() for i in f["samples/id"][:]]
        for index in range(4):
            row = data.sample_row(index, np.random.default_rng(index))
            assert (
                ids[row].startswith("train/Mug/") and ids[row].split("/")[3] == data.table.affordance[data.rows[index]]
            )
        test = QueryData(tmp_path / "v2.h5", "test", {"text": None, "image": None}, training=False)
        assert [ids[test.sample_row(i, None)] for i in range(2)] == [
            "test/Mug/m4/grasp/m4_grasp",
            "test/Mug/m4/contain/m4_contain",
        ]
    assert verify_store(tmp_path / "v2.h5")["ok"]


def test_merge_shifts_query_rows(cast_store, tmp_path):
    import shutil

    from afcli.data.importer import import_shapes
    from afcli.data.synth import synthesize

    synthesize(tmp_path / "other", count=6, seed=11)
    second = tmp_path / "second.h5"
    import_shapes(tmp_path / "other", second, num_points=256)
    with h5py.File(second, "r+") as f:  # other ids, so the two stores are shards of one set
        f["samples/id"][:] = np.array([b"x-" + i for i in f["samples/id"][:]])
        f["queries/id"][:] = np.array([b"x-" + i for i in f["queries/id"][:]])
    first = tmp_path / "first.h5"
    shutil.copy(cast_store, first)
    merged = tmp_path / "merged.h5"
    merge_stores([first, second], merged)
    with open_store(first) as a, open_store(second) as b, open_store(merged) as m:
        offset = a["samples/id"].shape[0]
        expected = np.concatenate([a["queries/sample"][:], b["queries/sample"][:] + offset])
        np.testing.assert_array_equal(m["queries/sample"][:], expected)
    assert verify_store(merged)["ok"]
    with h5py.File(first, "r+") as f:
        f["queries/sample"][0] = 10_000
    assert any("outside /samples" in p for p in verify_store(first)["problems"])


@pytest.mark.slow
def test_finetune_selects_on_val_and_resumes(cast_run, afcli_cmd):
    run, result = cast_run
    assert result["epochs"] == 2 and result["best_score"] is not None
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if "val" in r]
    assert len(epochs) == 2 and any(r.get("best") for r in epochs)
    assert (run / "best" / "model.safetensors").is_file() and (run / "expected.yaml").is_file()
    config = json.loads((run / "best" / "config.json").read_text())
    assert (
        config["model_type"] == "cast" and config["text_dim"] == 384 and config["image_dim"] == 1280
    )  # MiniLM-L6, EfficientNet-Lite0 s32
    resumed = afcli_cmd(
        "finetune", "cast", "--run", run, "--resume", "--epochs", "3", "--device", "cpu", "--json", check=0
    )
    assert json.loads(resumed.stdout)["resumed_from"] == 2
    again = afcli_cmd("finetune", "cast", "--run", run, "--store", "x.h5", check=2)
    assert "already holds a run" in again.stderr or "no such" in again.stderr


@pytest.mark.slow
def test_eval_synth_matches_saved_predictions(cast_run, tmp_path, afcli_cmd):
    run, _ = cast_run
    predictions, figures = tmp_path / "p.npz", tmp_path / "figures"
    out = afcli_cmd(
        "eval",
        "synth",
        "--checkpoint",
        run,
        "--save-predictions",
        predictions,
        "--figures",
        figures,
        "--votes",
        "2",
        "--device",
        "cpu",
        "--json",
        check=0,
    )
    result = json.loads(out.stdout)[0]
    assert (
        result["votes"] == 2 and result["prompts"] == ["text", "image"] and result["expected"]["test"]["aiou"] == 50.0
    )
    rescored = json.loads(afcli_cmd("eval", "affordance", "--predictions", predictions, "--json", check=0).stdout)
    for metric in ("aiou", "auc", "sim", "mae"):
        assert rescored["overall"][metric] == pytest.approx(result["results"]["all"]["overall"][metric], abs=1e-6)
    assert (figures / "gallery.png").stat().st_size > 10_000
    table = afcli_cmd("eval", "synth", "--checkpoint", run, "--checkpoint", run, "--device", "cpu", check=0).stdout
    assert "obtained vs expected" in table and table.count(str(run)) >= 2


def test_null_prompt_matches_a_missing_modality():
    """A sample whose text is marked absent gets exactly the text-free answer."""
    from afcli.models.cast import CAST, CASTConfig
    from afcli.models.point_mae import PointMAEConfig

    torch.manual_seed(0)
    backbone = PointMAEConfig(
        depth=1,
        trans_dim=32,
        encoder_dims=32,
        num_heads=2,
        decoder_heads=2,
        num_group=8,
        group_size=16,
        reconstruction="none",
    )
    model = CAST(
        CASTConfig(
            backbone=backbone,
            width=32,
            fusion_layers=1,
            fusion_heads=2,
            fusion_ffn=32,
            head_hidden=16,
            text_dim=12,
            image_dim=10,
        )
    ).eval()
    points, text, image = torch.rand(2, 256, 3), torch.rand(2, 5, 12), torch.rand(2, 1, 10)
    present = torch.tensor([False, True])
    mixed = model(points, text=text, image=image, text_present=present)
    without = model(points, image=image)
    with_text = model(points, text=text, image=image)
    torch.testing.assert_close(mixed[0], without[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mixed[1], with_text[1], atol=1e-5, rtol=1e-5)


def test_text_encoder_loads_a_local_roberta(tiny_roberta, tmp_path):
    """The RoBERTa path (paper's text encoder) through the real loading code, on a tiny random
    RobertaModel saved with a tokenizer; pooled and token outputs."""
    from afcli.prompts import TextEncoder

    pooled = TextEncoder("roberta-base", weights=str(tiny_roberta))
    tokens = TextEncoder("roberta-base", weights=str(tiny_roberta), pool="tokens")
    vector, mask = pooled(["where do I grasp the mug?", "sit"])
    states, token_mask = tokens(["where do I grasp the mug?", "sit"])
    assert vector.shape == (2, 1, 16) and mask.all()
    assert states.shape[0] == 2 and token_mask[1].sum() < token_mask[0].sum()
    expected = (states[1][token_mask[1]]).mean(0)
    torch.testing.assert_close(vector[1, 0], expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(InputError, match="no such weights"):
        TextEncoder("roberta-base", weights=str(tmp_path / "missing"))


@pytest.mark.slow
def test_export_torchscript_onnx_and_ply(cast_run, tmp_path, afcli_cmd):
    run, _ = cast_run
    out = afcli_cmd(
        "export",
        "torchscript",
        "--checkpoint",
        run,
        "--out",
        tmp_path / "cast.pt",
        "--points",
        "256",
        "--json",
        check=0,
    )
    result = json.loads(out.stdout)
    assert result["max_abs_difference"] <= 1e-4 and result["inputs"]["points"] == [1, 256, 3]
    onnxruntime = pytest.importorskip("onnxruntime")
    out = afcli_cmd(
        "export", "onnx", "--checkpoint", run, "--out", tmp_path / "cast.onnx", "--points", "256", "--json", check=0
    )
    assert json.loads(out.stdout)["max_abs_difference"] <= 1e-4
    loaded = torch.jit.load(str(tmp_path / "cast.pt"))
    inputs = [
        torch.rand(1, 256, 3),
        torch.rand(1, 1, 384),
        torch.ones(1, 1, dtype=torch.bool),
        torch.rand(1, 1, 1280),
        torch.ones(1, 1, dtype=torch.bool),
    ]
    from afcli.methods.cast.export import HeatMap
    from afcli.models.cast import CAST

    model = HeatMap(CAST.from_pretrained(run / "best"), ("text", "image")).eval()
    with torch.no_grad():
        expected = model(*inputs)
        torch.testing.assert_close(loaded(*inputs), expected, atol=1e-4, rtol=0)  # another cloud than the check's
    session = onnxruntime.InferenceSession(str(tmp_path / "cast.onnx"), providers=["CPUExecutionProvider"])
    names = ["points", "text", "text_mask", "image", "image_mask"]
    onnx_out = session.run(None, {name: t.numpy() for name, t in zip(names, inputs)})[0]
    np.testing.assert_allclose(onnx_out, expected.numpy(), atol=1e-4, rtol=0)
    predictions = tmp_path / "p.npz"
    afcli_cmd("eval", "synth", "--checkpoint", run, "--save-predictions", predictions, "--device", "cpu", check=0)
    import yaml

    store = yaml.safe_load((run / "config.yaml").read_text())["settings"]["data"]["store"]
    afcli_cmd("export", "ply", "--store", store, "--predictions", predictions, "--out", tmp_path / "ply", check=0)
    files = sorted((tmp_path / "ply").glob("*.ply"))
    with np.load(predictions) as saved:
        assert len(files) == 2 * len(saved["pred"])
    import trimesh

    cloud = trimesh.load(files[0])
    assert len(cloud.vertices) == 256


def test_cast_recipes_load_and_carry_expected_numbers():

    from afcli.config import load_recipe
    from afcli.methods.cast.settings import CASTSettings

    recipes = sorted((ROOT / "recipes" / "cast").glob("[!_]*.yaml"))
    assert len(recipes) == 13
    for path in recipes:
        settings, raw = load_recipe(path, CASTSettings, "finetune")
        settings.model.check()
        if path.stem != "synth":
            assert raw["expected"]["protocol"] == "standard" and raw["source"] in ("paper", "official-code")
    laso, _ = load_recipe(recipes[0].parent / "laso-official.yaml", CASTSettings, "finetune")
    assert (laso.model.fusion, laso.loss.focal_weight, laso.backbone_lr_scale, laso.prompts.text_pool) == (
        "points",
        0.5,
        0.2,
        "tokens",
    )
    piad, _ = load_recipe(recipes[0].parent / "piad-seen-official.yaml", CASTSettings, "finetune")
    assert (piad.prompts.resize, piad.prompts.token_dtype, piad.optim.min_lr_scope) == ("bicubic", "float32", "group")
    paper, _ = load_recipe(recipes[0].parent / "piad-seen-paper.yaml", CASTSettings, "finetune")
    assert (paper.prompts.resize, paper.prompts.token_dtype, paper.optim.min_lr_scope) == (
        "bilinear",
        "float16",
        "scaled",
    )


def test_prompt_resize_and_token_dtype_are_settings():
    from afcli.images import square
    from afcli.prompts import stack

    picture = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8))
    bilinear, bicubic = square(picture, 32), square(picture, 32, "bicubic")
    assert bilinear.shape == bicubic.shape == (32, 32, 3) and not torch.equal(bilinear, bicubic)
    tokens = torch.tensor([[[1.0 + 2**-12]]])
    assert stack([(tokens, torch.ones(1, 1, dtype=torch.bool))])[0].dtype == torch.float16
    kept = stack([(tokens, torch.ones(1, 1, dtype=torch.bool))], torch.float32)[0]
    assert kept.dtype == torch.float32 and kept.item() == tokens.item()  # fp16 would round it to 1.0


def test_precise_bn_makes_eval_match_train_on_the_calibration_batch(cast_run):
    """After re-estimating BatchNorm statistics on one batch, eval mode on that batch reproduces
    train mode (no dropout): what short fine-tuning runs need before validating."""
    from afcli.engine.run import read_settings
    from afcli.methods.cast.data import QueryData
    from afcli.methods.cast.predict import prompt_inputs, recalibrate_batchnorm
    from afcli.methods.cast.settings import CASTSettings
    from afcli.methods.cast.task import CASTTask

    run, _ = cast_run
    settings = read_settings(CASTSettings, run)
    settings.model.dropout, settings.batch_size = 0.0, 8
    task = CASTTask(settings, run)
    torch.manual_seed(0)
    model = task.build_model()
    data = QueryData(settings.data.store, "train", task.prompts, training=False, seed=settings.seed)
    batch = torch.utils.data.default_collate([data[i] for i in range(8)])
    inputs = prompt_inputs(task.prompts, batch, "cpu")
    recalibrate_batchnorm(model, data, 8, 1, "cpu")
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert all(m.momentum == 0.1 and int(m.num_batches_tracked) == 1 for m in norms) and not model.training
    with torch.no_grad():
        evaluated = model(batch["points"], **inputs)
        model.train()
        trained = model(batch["points"], **inputs)
    torch.testing.assert_close(evaluated, trained, atol=2e-3, rtol=0)


def test_knn_ties_in_onnx_follow_the_index_order(tmp_path):
    """ONNX has no stable sort; the exported kNN orders its neighbours with TopK, whose ties go to
    the lower index — the order the PyTorch path gives. (Ties at the k-th place are a different
    matter: which of them is kept is up to each backend's selection, so the cloud avoids them.)"""
    onnxruntime = pytest.importorskip("onnxruntime")
    from afcli.export import traceable
    from afcli.ops import knn

    class Neighbours(torch.nn.Module):
        def forward(self, points, queries):
            return knn(points, queries, 8)[0]

    square = torch.tensor([[1.0, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]])
    rings = torch.cat([square * 3, square, square * 2, square * 5])[
        torch.randperm(16, generator=torch.Generator().manual_seed(0))
    ]
    grid = rings.unsqueeze(0)  # distances 1, 2, 3, 5 from the origin, four points each, shuffled
    queries = torch.zeros(1, 2, 3)
    with torch.no_grad(), traceable():
        expected = Neighbours()(grid, queries)
        torch.onnx.export(
            Neighbours(),
            (grid, queries),
            str(tmp_path / "knn.onnx"),
            input_names=["p", "q"],
            dynamo=False,
            opset_version=17,
        )
    session = onnxruntime.InferenceSession(str(tmp_path / "knn.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"p": grid.numpy(), "q": queries.numpy()})[0]
    np.testing.assert_array_equal(got, expected.numpy())


@pytest.mark.slow
def test_two_gloo_processes_split_the_batch(cast_store, tmp_path):
    """--gpus 2 on CPU: each process takes half of every global batch. The first step's focal term
    (a mean over points) equals the one-process value; the dice term is a sum over each process's
    own half (the authors' DDP code does the same), so the curves part after that."""
    from afcli.config import apply_sets
    from afcli.engine.distributed import Launch
    from afcli.methods import train
    from afcli.methods.cast.settings import CASTSettings

    def settings():
        s = CASTSettings(epochs=2, batch_size=8, device="cpu")
        s.data.store, s.prompts.text, s.prompts.image = str(cast_store), "minilm-l6", None
        s.model.dropout = 0.0  # dropout draws differ per process; everything else must agree
        s.precise_bn_batches = 1  # rank 0 re-estimates BatchNorm alone while rank 1 waits
        return apply_sets(s, TINY_CAST[1::2])

    one = train("cast", settings(), tmp_path / "one", show_progress=False)
    two = train("cast", settings(), tmp_path / "two", plan=Launch(gpus=2), show_progress=False)
    assert two["world_size"] == 2 and len(one["history"]) == len(two["history"]) > 4
    assert one["history"][0]["focal"] == pytest.approx(two["history"][0]["focal"], rel=1e-5)
    assert all(np.isfinite(r["total"]) for r in two["history"]) and two["best_score"] is not None
    assert (tmp_path / "two" / "best" / "model.safetensors").is_file()


@pytest.mark.slow
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, afcli_cmd, synth_dir):
    from afcli.data.importer import import_shapes

    plain = tmp_path / "plain.h5"
    import_shapes(synth_dir / "meshes", plain, num_points=256)  # meshes without a manifest: no queries
    out = afcli_cmd("finetune", "cast", "--store", plain, "--text", "minilm-l6", "--run", tmp_path / "run", check=2)
    assert "holds no queries" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
    missing = afcli_cmd("eval", "laso", "--checkpoint", tmp_path / "nowhere", check=2)
    assert "not a run directory" in missing.stderr
    wrong = afcli_cmd("eval", "synth", "--checkpoint", tmp_path / "nowhere", "--prompt", "audio", check=2)
    assert "error:" in wrong.stderr


@pytest.mark.slow
def test_laso_recipe_run_reports_seen_unseen_against_the_paper(tmp_path, afcli_cmd):
    """LASO end to end on a fixture in its own format: the paper recipe (MiniLM standing in for
    RoBERTa, a tiny model), then `afcli eval laso` with the seen / unseen filters, 3 votes by
    default, and Table 2's numbers beside the obtained ones."""

    root = tmp_path / "LASO_dataset"
    for split in ("train", "val", "test"):
        write_laso(root, split)
    store = tmp_path / "laso.h5"
    afcli_cmd("data", "import", root, "--benchmark", "laso", "--store", store, check=0)
    recipe = ROOT / "recipes" / "cast" / "laso-paper.yaml"
    afcli_cmd(
        "finetune",
        "cast",
        "--recipe",
        recipe,
        "--store",
        store,
        "--text",
        "minilm-l6",
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--run",
        tmp_path / "run",
        "--device",
        "cpu",
        *TINY_CAST,
        check=0,
    )
    result = json.loads(
        afcli_cmd("eval", "laso", "--checkpoint", tmp_path / "run", "--device", "cpu", "--json", check=0).stdout
    )[0]
    assert result["votes"] == 3 and result["prompts"] == ["text"]
    # Fixture test pairs: mug/grasp (seen), scissors/cut (unseen), scissors/move (neither), door/pull (neither).
    assert (
        result["results"]["seen"]["overall"]["samples"] == 1 and result["results"]["unseen"]["overall"]["samples"] == 1
    )
    assert result["results"]["all"]["overall"]["samples"] == 4
    assert result["expected"]["seen"]["aiou"] == 21.7 and result["expected"]["unseen"]["aiou"] == 17.5
    shown = afcli_cmd(
        "eval", "laso", "--checkpoint", tmp_path / "run", "--device", "cpu", "--votes", "1", check=0
    ).stdout
    assert "obtained vs expected" in shown and "21.7" in shown
