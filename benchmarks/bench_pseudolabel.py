"""``afcli pseudolabel`` cost per shape: the detector's own time against everything afcli adds
(nearest surface points, visibility, box votes, the per-view mask rule), with an OWLv2-shaped random
detector (Owlv2Config's ViT-B/16 at 960², the size of google/owlv2-base-patch16-ensemble;
random weights cost what real ones do). Target: voting + masks ≤ 10 % of the detector's time.

    python benchmarks/bench_pseudolabel.py [SHAPES]
"""

import sys
import tempfile
from pathlib import Path

import torch


def save_owlv2(folder: Path) -> Path:
    """OWLv2 at its released size, random, with a byte-level tokenizer (the real vocabulary cannot be fetched)."""
    import transformers as T
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)} | {c + "</w>": len(chars) + i for i, c in enumerate(chars)}
    vocab |= {"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1}
    processor = T.Owlv2Processor(
        image_processor=T.Owlv2ImageProcessor(), tokenizer=T.CLIPTokenizer(vocab=vocab, merges=[])
    )
    torch.manual_seed(0)
    config = T.Owlv2Config(vision_config={"image_size": 960})  # the released ensemble's input side
    T.Owlv2ForObjectDetection(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def main(count: int) -> None:
    from afcli.data.importer import import_shapes
    from afcli.data.synth import synthesize
    from afcli.pseudolabel.stage import PseudolabelSettings, pseudolabel_store
    from afcli.render.stage import RenderSettings, render_store

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthesize(tmp / "shapes", count=count * 2, seed=0)
        store = tmp / "store.h5"
        import_shapes(tmp / "shapes", store)
        render_store(store, RenderSettings(views=8, size=224), keep_views=True, device="cpu")
        rows = []
        owlv2 = str(save_owlv2(tmp / "owlv2"))
        for name, detector, label in (("oracle", "oracle", "oracle"), ("OWLv2-B/16 @960, random", owlv2, "owlv2")):
            report = pseudolabel_store(store, PseudolabelSettings(detector=detector, name=label, device="cpu"))
            labelled = report["labelled"]
            detect, label = (report["seconds"][k] / labelled for k in ("detect", "label"))
            rows.append((name, labelled, detect, label))
        print(f"{count * 2} shapes ({rows[0][1]} with functional parts), 8 views at 224², 2 threads")
        print("| boxes from | shapes | detector per shape | voting + masks per shape | ratio |")
        print("|---|---|---|---|---|")
        for name, labelled, detect, label in rows:
            print(
                f"| {name} | {labelled} | {detect * 1000:.0f} ms | {label * 1000:.0f} ms "
                f"| {100 * label / detect:.1f} % |"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
