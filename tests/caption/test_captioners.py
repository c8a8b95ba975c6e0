"""View captioners through transformers: a tiny random BLIP saved and loaded through the real loading
code captions each instance's best view of the built-in rooms."""

import json
import shutil
from pathlib import Path

import numpy as np
import torch


def save_tiny_blip(folder: Path) -> Path:
    """BLIP at a tiny size with a ten-word vocabulary; its decoder is biased to say "chair"."""
    import transformers as T

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "chair", "cup", "table", "on", "the"]
    tokenizer = T.BertTokenizerFast(vocab={w: i for i, w in enumerate(words)})
    image_processor = T.BlipImageProcessor(size={"height": 32, "width": 32})
    layers = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = T.BlipConfig(
        vision_config={**layers, "image_size": 32, "patch_size": 8},
        text_config={**layers, "vocab_size": len(words), "encoder_hidden_size": 32, "bos_token_id": 2,
                     "pad_token_id": 0, "sep_token_id": 3, "eos_token_id": 3, "max_position_embeddings": 64},
        projection_dim=32,
    )  # fmt: skip
    torch.manual_seed(0)
    model = T.BlipForConditionalGeneration(config)
    with torch.no_grad():
        model.text_decoder.cls.predictions.bias[words.index("chair")] = 50.0
    model.save_pretrained(folder)
    T.BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_blip_captions_each_instance_from_its_best_view(rooms_store, tmp_path, afcli_run):
    from afcli.store.schema import open_store, read_sample
    from afcli.store.texts import read_texts

    blip = save_tiny_blip(tmp_path / "blip")
    store = rooms_store.parent / "captioned.h5"
    shutil.copy(rooms_store, store)
    args = ["--json", "caption", store, "--phrases", "rules", "--captioner", "blip", "--captioner-weights", blip]
    result = json.loads(afcli_run(*args, check=0).stdout)
    assert result["captioner"] == str(blip)
    with open_store(store) as f:
        table = read_texts(f)
        viewed = [r for r in table.rows if r.source == "blip"]
        assert viewed and all(r.text.startswith("chair chair") and r.kind == "caption" for r in viewed)
        instances = np.unique(read_sample(f, 0, "labels/instance"))
    assert {r.target for r in viewed if r.sample == 0} <= set(instances.tolist())
    assert len({r.target for r in viewed if r.sample == 0}) >= 3  # several instances seen well enough


def test_missing_captioner_is_one_line(rooms_store, tmp_path, afcli_run):
    store = rooms_store.parent / "nocaptioner.h5"
    shutil.copy(rooms_store, store)
    result = afcli_run("caption", store, "--captioner", "blip", "--captioner-weights", tmp_path / "none", check=2)
    assert result.stderr.count("\n") == 1 and "none" in result.stderr


def test_clip_text_embeddings_beside_the_texts(rooms_store, tiny_weights, afcli_run):
    from afcli.store.schema import open_store
    from afcli.store.texts import read_texts

    store = rooms_store.parent / "clip-texts.h5"
    shutil.copy(rooms_store, store)
    args = ["caption", store, "--phrases", "rules", "--encoder", "clip", "--weights", tiny_weights["clip"]]
    afcli_run(*args, check=0)
    with open_store(store) as f:
        table = read_texts(f)
    vectors = table.embeddings["clip"]
    assert vectors.shape[0] == len(table.rows) and vectors.shape[1] > 0
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-2)
    assert "texts" in afcli_run("store", "info", store, check=0).stdout
