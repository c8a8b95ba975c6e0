"""``afcli finetune cast``: CMAT Stage 3 — prompt-driven affordance segmentation on a store's queries.

The defaults are the paper's recipe (cmat-cast-3d-affordance.md §4.1: RoBERTa / DINOv3 ViT-B frozen,
L = 6, backbone lr 1e-5 and new modules 1e-4, focal 1.0 + dice 1.0, 100 epochs, batch 16); the
authors' code is ``recipes/cast/*-official.yaml``. Where the paper is silent afcli takes the code's
value and says so: weight decay 0.01, cosine to 1e-6 per epoch without warm-up, no clipping (the code
clips at 1.0: official recipes set ``grad_clip``).

With ``--gpus N`` each process takes 1/N of every global batch; the dice term is computed over each
process's share, as in the authors' DDP code, so N processes do not replay one process exactly.

Model selection uses the ``val`` split (the best validation aIoU is exported to ``best/``); the
official code selects on test, afcli does not. Prompts are encoded once, before training, into
``prompts.pt`` in the run directory (frozen encoders, as the paper).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from afcli.config import check_numbers
from afcli.engine.distributed import Launch, external_rank, launch, launched_externally, pick_device
from afcli.engine.run import settings_for_run, train_rank, write_run
from afcli.engine.trainer import OptimSettings
from afcli.errors import InputError
from afcli.losses.seg import cast_loss
from afcli.models.cast import CAST, CASTConfig

AUGMENTATIONS = ("none", "laso", "piad")
PROMPTS_FILE = "prompts.pt"


@dataclass
class PromptSettings:
    text: str | None = "roberta-base"  # None: no text prompts
    text_weights: str | None = None
    text_pool: str = "mean"  # mean / cls: one vector (paper); tokens: every token state (code)
    max_length: int = 128
    image: str | None = None  # a 2D teacher, e.g. dinov3:vitb16 (paper), dinov2:vitb14 (code, PIADv2)
    image_weights: str | None = None
    image_pool: str = "mean"
    drop: float = 0.0  # per training sample, chance that one present modality becomes the null token


@dataclass
class CASTData:
    store: str | None = None
    augment: str = "none"  # laso: y-rotation, jitter 0.01, scale 0.8–1.2; piad: jitter 0.01, 50 % z-rotation
    workers: int = 0


@dataclass
class CASTLossSettings:
    focal_weight: float = 1.0
    dice_weight: float = 1.0


@dataclass
class CASTSettings:
    model: CASTConfig = field(default_factory=CASTConfig)
    backbone: str | None = None  # a CMAT run (or saved Point-MAE); None: from scratch
    prompts: PromptSettings = field(default_factory=PromptSettings)
    data: CASTData = field(default_factory=CASTData)
    loss: CASTLossSettings = field(default_factory=CASTLossSettings)
    optim: OptimSettings = field(default_factory=lambda: OptimSettings(lr=1e-4, weight_decay=0.01, warmup_epochs=0))
    backbone_lr_scale: float = 0.1  # paper 1e-5 / 1e-4; code 0.2
    grad_clip: float | None = None
    # Before each validation, re-estimate BatchNorm statistics over this many training batches
    # ("precise BN"). 0 (paper, code): keep the running averages, which is right for long runs. Short
    # runs need it: running variances start at 1 while Point-MAE's first BatchNorm sees activations
    # of variance ~1e-5, so the running average needs 100+ steps to come down, and until then
    # eval-mode patch embeddings are shrunk ~15x and the heat maps come out flat.
    precise_bn_batches: int = 0
    epochs: int = 100
    batch_size: int = 16
    val_batch_size: int = 16
    seed: int = 0
    device: str = "auto"
    amp: bool = True

    def check(self) -> "CASTSettings":
        check_numbers(self)
        if self.data.store is None:
            raise InputError("no store given (--store S.h5)")
        if self.data.augment not in AUGMENTATIONS:
            raise InputError(f"data.augment must be one of {', '.join(AUGMENTATIONS)}")
        if self.prompts.text is None and self.prompts.image is None:
            raise InputError("CAST needs a text or an image prompt encoder (prompts.text / prompts.image)")
        if self.prompts.drop and not (self.model.null_prompt and self.prompts.text and self.prompts.image):
            raise InputError("prompts.drop needs both encoders and model.null_prompt")
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError("epochs and batch_size must be positive")
        self.model.check()
        pick_device(self.device)
        return self


# -- prompts -------------------------------------------------------------------------------------
def image_key(image: str, affordance: str) -> str:
    from afcli.prompts import RENDER_PREFIX

    return f"{image}#{affordance}" if image.startswith(RENDER_PREFIX) else image


def encode_prompts(
    settings: PromptSettings,
    store: Path,
    table,
    rows: np.ndarray,
    *,
    all_questions: bool,
    device,
    advance=None,
    on_total=None,
) -> dict:
    """``{"text": EncodedPrompts | None, "image": …, "provenance": {kind: encoder, weights, sha256}}``
    for the queries ``rows`` of ``table``: every question of each (training) or only the first
    (evaluation), and every image prompt."""
    from afcli.prompts import RENDER_PREFIX, EncodedPrompts, ImageEncoder, TextEncoder, read_image, render_prompt, stack
    from afcli.store import open_store
    from afcli.store.schema import decode

    texts = (
        sorted({q for r in rows for q in (table.text[r] if all_questions else table.text[r][:1])})
        if settings.text
        else []
    )
    images = sorted({(table.image[r], table.affordance[r]) for r in rows if table.image[r]}) if settings.image else []
    if settings.text and any(not table.text[r] for r in rows):
        raise InputError(
            "some queries have no question but the model takes text prompts (set prompts.text: null)", store
        )
    if settings.image and any(not table.image[r] for r in rows):
        raise InputError(
            "some queries have no image but the model takes image prompts (set prompts.image: null)", store
        )
    batch = 32
    (on_total or (lambda n: None))(-(-len(texts) // batch) + -(-len(images) // batch))
    advance = advance or (lambda: None)
    out = {"text": None, "image": None, "provenance": {}}
    if texts:
        encoder = TextEncoder(
            settings.text, weights=settings.text_weights, pool=settings.text_pool, max_length=settings.max_length
        ).to(device)
        parts = []
        for start in range(0, len(texts), batch):
            parts.append(tuple(t.cpu() for t in encoder(texts[start : start + batch])))
            advance()
        out["text"] = EncodedPrompts({t: i for i, t in enumerate(texts)}, *stack(parts))
        out["provenance"]["text"] = encoder.provenance()
    if images:
        encoder = ImageEncoder(settings.image, weights=settings.image_weights, pool=settings.image_pool).to(device)
        folder = Path(store).resolve().parent
        with open_store(store) as f:
            ids = {sample_id: row for row, sample_id in enumerate(decode(f["samples/id"][:]))}
            channels = decode(f["labels/affordance"].attrs["channels"])
            parts = []
            for start in range(0, len(images), batch):
                pictures = []
                for image, affordance in images[start : start + batch]:
                    if image.startswith(RENDER_PREFIX):
                        other = ids.get(image[len(RENDER_PREFIX) :])
                        if other is None:
                            raise InputError(f"image prompt {image}: no such sample in the store", store)
                        heat = f["labels/affordance"][other][:, channels.index(affordance)]
                        picture = render_prompt(f["points/xyz"][other], f["points/normal"][other], heat)
                    else:
                        picture = read_image(folder / image)
                    pictures.append(_square(picture, encoder.teacher.preprocess.size))
                parts.append(tuple(t.cpu() for t in encoder(torch.stack(pictures).to(device))))
                advance()
        out["image"] = EncodedPrompts({image_key(i, a): k for k, (i, a) in enumerate(images)}, *stack(parts))
        out["provenance"]["image"] = encoder.provenance()
    return out


def _square(picture: torch.Tensor, size: int) -> torch.Tensor:
    """Resize to size × size (PIAD / PIADv2 loaders: a plain resize, no crop)."""
    resized = torch.nn.functional.interpolate(
        picture.permute(2, 0, 1)[None].float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )
    return resized[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8)


# -- data ----------------------------------------------------------------------------------------
class QueryData(torch.utils.data.Dataset):
    """Queries of one split as CAST batches: points, ground truth and prompt indices, seeded by
    ``(seed, epoch, index)``. Training draws a question from the second on (the first is the
    evaluation question, as LASO's loader) and a cloud for unpaired queries."""

    def __init__(
        self,
        store: str | Path,
        split: str,
        prompts: dict,
        *,
        training: bool,
        augment: str = "none",
        seed: int = 0,
        drop: float = 0.0,
    ):
        from afcli.store import open_store
        from afcli.store.queries import read_queries
        from afcli.store.schema import decode

        self.store, self.prompts, self.training, self.augment, self.seed, self.drop = (
            Path(store),
            prompts,
            training,
            augment,
            seed,
            drop,
        )
        self.epoch, self._file = 0, None
        with open_store(store) as f:
            self.table = read_queries(f, store)
            self.rows = self.table.rows(split)
            if not len(self.rows):
                raise InputError(f"no {split} queries in the store", store)
            self.channels = decode(f["labels/affordance"].attrs["channels"])
            categories = [c.lower() for c in decode(f["samples/category"][:])]
            splits = decode(f["labels/split"][:]) if "labels/split" in f else [""] * len(categories)
            annotated = (
                f["labels/annotated"][:]
                if "labels/annotated" in f
                else np.ones((len(categories), len(self.channels)), np.uint8)
            )
            done = f["status/import"][:] == 1
        self.pools: dict[tuple[str, str, str], np.ndarray] = {}
        for r in self.rows:
            if self.table.sample[r] < 0:
                key = (self.table.object[r], self.table.affordance[r], self.table.split[r])
                if key not in self.pools:
                    channel = self.channels.index(key[1])
                    pool = np.flatnonzero(
                        [
                            c == key[0] and s == key[2] and a[channel] and d
                            for c, s, a, d in zip(categories, splits, annotated, done)
                        ]
                    )
                    if not len(pool):
                        raise InputError(
                            f"no {key[2]} cloud of {key[0]} with {key[1]} annotated for query {self.table.id[r]}", store
                        )
                    self.pools[key] = pool
            elif not done[self.table.sample[r]]:
                raise InputError(f"query {self.table.id[r]} asks about a sample that is not imported", store)

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None}

    def sample_row(self, index: int, rng: np.random.Generator) -> int:
        r = self.rows[index]
        if self.table.sample[r] >= 0:
            return int(self.table.sample[r])
        pool = self.pools[(self.table.object[r], self.table.affordance[r], self.table.split[r])]
        return int(pool[rng.integers(len(pool))])

    def __getitem__(self, index: int) -> dict:
        from afcli.store import open_store

        if self._file is None:
            self._file = open_store(self.store)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        r = self.rows[index]
        row = self.sample_row(index, rng)
        points = torch.from_numpy(self._file["points/xyz"][row]).float()
        gt = torch.from_numpy(
            self._file["labels/affordance"][row][:, self.channels.index(self.table.affordance[r])]
        ).float()
        if self.training:
            points = _augment(points, self.augment, rng)
        item = {"points": points, "gt": gt, "query": torch.tensor(r)}
        text, image = self.prompts["text"], self.prompts["image"]
        keep_text = keep_image = True
        if self.training and self.drop and rng.random() < self.drop:
            keep_text, keep_image = (False, True) if rng.random() < 0.5 else (True, False)
        if text is not None:
            questions = self.table.text[r]
            question = (
                questions[1 + int(rng.integers(len(questions) - 1))]
                if self.training and len(questions) > 1
                else questions[0]
            )
            item["text"] = torch.tensor(text.keys[question])
            item["text_present"] = torch.tensor(keep_text)
        if image is not None:
            item["image"] = torch.tensor(image.keys[image_key(self.table.image[r], self.table.affordance[r])])
            item["image_present"] = torch.tensor(keep_image)
        return item


def _rotation(axis: int, angle: float) -> torch.Tensor:
    c, s = np.cos(angle), np.sin(angle)
    i, j = [k for k in range(3) if k != axis]
    matrix = np.eye(3)
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    return torch.from_numpy(matrix).float()


def _augment(points: torch.Tensor, kind: str, rng: np.random.Generator) -> torch.Tensor:
    """The official loaders' training augmentation (../shared/reference/cmat-official-code.md)."""
    if kind == "laso":
        points = points @ _rotation(1, rng.uniform(0, 2 * np.pi)).T
        points = points + torch.from_numpy(rng.normal(0, 0.01, points.shape)).float()
        return points * float(rng.uniform(0.8, 1.2))
    if kind == "piad":
        points = points + torch.from_numpy(rng.normal(0, 0.01, points.shape)).float()
        return points @ _rotation(2, rng.uniform(0, 2 * np.pi)).T if rng.random() < 0.5 else points
    return points


# -- model, loss, prediction ---------------------------------------------------------------------
def prompt_inputs(prompts: dict, batch: dict, device) -> dict:
    """CAST keyword inputs for a batch of prompt indices."""
    inputs = {}
    for kind in ("text", "image"):
        if prompts[kind] is not None and kind in batch:
            tokens, mask = prompts[kind].tokens, prompts[kind].mask
            index = batch[kind].to(tokens.device)
            inputs[kind] = tokens[index].to(device).float()
            inputs[f"{kind}_mask"] = mask[index].to(device)
            if f"{kind}_present" in batch and not bool(batch[f"{kind}_present"].all()):
                inputs[f"{kind}_present"] = batch[f"{kind}_present"].to(device)
    return inputs


@torch.no_grad()
def predict(
    model: CAST,
    data: QueryData,
    *,
    batch_size: int,
    device,
    votes: int = 1,
    use: tuple[str, ...] = ("text", "image"),
    advance=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Heat maps (Q, N) and ground truth (Q, N) of every query of ``data``. ``votes`` > 1 averages
    passes over seeded point orders (vote 0 = the stored order), i.e. FPS from other start points —
    LASO's evaluation averages 3 passes. ``use`` picks the prompt modalities (others: null token)."""
    model.eval()
    preds, gts = [], []
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    for batch in loader:
        points = batch["points"].to(device)
        inputs = prompt_inputs(data.prompts, {k: v for k, v in batch.items() if k.split("_")[0] in use}, device)
        total = torch.zeros(points.shape[:2], device=device)
        for vote in range(votes):
            order = (
                torch.arange(points.shape[1])
                if vote == 0
                else torch.randperm(points.shape[1], generator=torch.Generator().manual_seed(vote))
            )
            order = order.to(device)
            heat = torch.sigmoid(model(points[:, order], **inputs).float())
            total[:, order] += heat
        preds.append((total / votes).cpu().numpy())
        gts.append(batch["gt"].numpy())
        if advance:
            advance()
    return np.concatenate(preds), np.concatenate(gts)


@torch.no_grad()
def recalibrate_batchnorm(model: CAST, data: "QueryData", batch_size: int, batches: int, device) -> None:
    """Replace every BatchNorm's running statistics by their plain average over the first
    ``batches`` batches of ``data`` (training queries, unaugmented, evaluation question), run in
    train mode. Statistics come from this process alone: under DDP only rank 0 validates."""
    from afcli.models.point_mae import local_statistics

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    model.train()
    with local_statistics(model):
        for step, batch in enumerate(loader):
            if step == batches:
                break
            batch = {k: v.to(device) for k, v in batch.items()}
            model(batch["points"], **prompt_inputs(data.prompts, batch, device))
    model.eval()
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


class CASTTask:
    find_unused_parameters = True  # a modality's null token or projection may sit out a batch

    def __init__(self, settings: CASTSettings, run_dir: Path):
        self.settings = settings
        self.grad_clip = settings.grad_clip
        self.prompts = load_prompts(run_dir)
        self._val = self._calibration = None

    def build_model(self) -> CAST:
        model = CAST(self.settings.model)
        if self.settings.backbone:
            from afcli.eval.probe import resolve_backbone

            model.load_backbone(resolve_backbone(Path(self.settings.backbone)))
        return model

    def parameter_groups(self, model: CAST, weight_decay: float) -> list[dict]:
        from afcli.engine.trainer import parameter_groups

        backbone = {id(p) for p in model.backbone.parameters()}
        groups = []
        for group in parameter_groups(model, weight_decay):
            for in_backbone, scale in ((True, self.settings.backbone_lr_scale), (False, 1.0)):
                params = [p for p in group["params"] if (id(p) in backbone) == in_backbone]
                if params:
                    groups.append({"params": params, "weight_decay": group["weight_decay"], "lr_scale": scale})
        return groups

    def dataset(self) -> QueryData:
        s = self.settings
        return QueryData(
            s.data.store, "train", self.prompts, training=True, augment=s.data.augment, seed=s.seed, drop=s.prompts.drop
        )

    def loss(self, model, batch: dict) -> dict[str, torch.Tensor]:
        logits = model(batch["points"], **prompt_inputs(self.prompts, batch, batch["points"].device))
        with torch.autocast(batch["points"].device.type, enabled=False):
            return cast_loss(
                logits.float(), batch["gt"].float(), self.settings.loss.focal_weight, self.settings.loss.dice_weight
            )

    def validate(self, model: CAST) -> dict:
        from afcli.metrics.affordance import standard

        if self._val is None:
            self._val = QueryData(self.settings.data.store, "val", self.prompts, training=False)
        device = next(model.parameters()).device
        s = self.settings
        if s.precise_bn_batches:
            if self._calibration is None:
                self._calibration = QueryData(s.data.store, "train", self.prompts, training=False, seed=s.seed)
            recalibrate_batchnorm(model, self._calibration, s.batch_size, s.precise_bn_batches, device)
        pred, gt = predict(model, self._val, batch_size=self.settings.val_batch_size, device=device)
        overall = standard(pred, gt)["overall"]
        return {"score": overall["aiou"] if np.isfinite(overall["aiou"]) else -overall["mae"], **overall}

    def export(self, model: CAST, folder: Path) -> None:
        model.save_pretrained(folder)


# -- runs ----------------------------------------------------------------------------------------
def prepare_run(
    settings: CASTSettings | None,
    run_dir: Path,
    resume: dict | None,
    progress_hooks=(None, None),
    expected: dict | None = None,
) -> CASTSettings:
    settings = settings_for_run(CASTSettings, settings, run_dir, resume)
    if resume is None:
        from afcli.store import open_store
        from afcli.store.queries import read_queries

        with open_store(settings.data.store) as f:
            table = read_queries(f, settings.data.store)
        train_rows, val_rows = table.rows("train"), table.rows("val")
        if not len(train_rows) or not len(val_rows):
            raise InputError(
                f"fine-tuning needs train and val queries; the store has {len(train_rows)} and {len(val_rows)}",
                settings.data.store,
            )
        rows = np.concatenate([train_rows, val_rows])
        train_only = np.isin(rows, train_rows)
        prompts = encode_prompts(
            settings.prompts,
            Path(settings.data.store),
            table,
            rows[train_only],
            all_questions=True,
            device=pick_device(settings.device),
            advance=progress_hooks[0],
            on_total=progress_hooks[1],
        )
        evaluation = encode_prompts(
            settings.prompts,
            Path(settings.data.store),
            table,
            rows[~train_only],
            all_questions=False,
            device=pick_device(settings.device),
        )
        prompts = merge_prompts(prompts, evaluation)
        # The prompt widths follow the encoders.
        settings.model.text_dim = None if prompts["text"] is None else int(prompts["text"].tokens.shape[-1])
        settings.model.image_dim = None if prompts["image"] is None else int(prompts["image"].tokens.shape[-1])
        if settings.backbone:
            from afcli.eval.probe import resolve_backbone

            CAST(settings.model).load_backbone(resolve_backbone(Path(settings.backbone)))  # architectures match
        # Under torchrun every process gets here: each saves the same prompts atomically (it needs
        # the file next), rank 0 alone writes the run's record.
        save_prompts(prompts, run_dir)
        if launched_externally() and external_rank() != 0:
            return settings
        write_run(settings, run_dir, "finetune", "cast", expected)
    return settings


def save_prompts(prompts: dict, run_dir: Path) -> None:
    from afcli.engine.checkpoint import save_atomic

    state = {kind: None if prompts[kind] is None else prompts[kind].state() for kind in ("text", "image")}
    save_atomic({**state, "provenance": prompts["provenance"]}, run_dir / PROMPTS_FILE)


def load_prompts(run_dir: Path) -> dict:
    """A run's encoded prompts (``prompts.pt``: tensors and plain data, loaded with weights_only)."""
    from afcli.engine.checkpoint import load_checkpoint
    from afcli.prompts import EncodedPrompts

    if not (run_dir / PROMPTS_FILE).is_file():
        raise InputError(f"no {PROMPTS_FILE} (not a CAST run directory)", run_dir)
    state = load_checkpoint(run_dir / PROMPTS_FILE, ("text", "image", "provenance"))
    return {
        **{kind: None if state[kind] is None else EncodedPrompts.from_state(state[kind]) for kind in ("text", "image")},
        "provenance": state["provenance"],
    }


def merge_prompts(first: dict, second: dict) -> dict:
    from afcli.prompts import EncodedPrompts

    merged = {"provenance": {**second["provenance"], **first["provenance"]}}
    for kind in ("text", "image"):
        a, b = first[kind], second[kind]
        if a is None or b is None:
            merged[kind] = a or b
            continue
        extra = [k for k in b.keys if k not in a.keys]
        index = torch.tensor([b.keys[k] for k in extra], dtype=torch.long)
        length = max(a.tokens.shape[1], b.tokens.shape[1])

        def pad(t, n):
            return torch.nn.functional.pad(t, (0, 0, 0, n - t.shape[1]) if t.dim() == 3 else (0, n - t.shape[1]))

        keys = dict(a.keys)
        keys.update({k: len(a.keys) + i for i, k in enumerate(extra)})
        merged[kind] = EncodedPrompts(
            keys,
            torch.cat([pad(a.tokens, length), pad(b.tokens[index], length)]),
            torch.cat([pad(a.mask, length), pad(b.mask[index], length)]),
        )
    return merged


def finetune(
    settings: CASTSettings,
    run_dir: str | Path,
    *,
    plan: Launch | None = None,
    show_progress: bool = True,
    expected: dict | None = None,
) -> dict:
    """Fine-tune CAST into a new ``run_dir``; ``expected`` (a recipe's paper numbers) is kept for eval."""
    from afcli.console import progress

    run_dir = Path(run_dir)
    plan = (plan or Launch()).check(settings.device)  # before the run directory is written
    with progress("encode prompts") as (advance, set_total):
        settings = prepare_run(settings, run_dir, None, (advance, set_total), expected)
    return launch(
        plan, train_rank, "finetune cast", CASTTask, (settings, run_dir), settings, run_dir, False, show_progress
    )


def resume_run(
    run_dir: str | Path,
    *,
    epochs: int | None = None,
    device: str | None = None,
    store: str | Path | None = None,
    plan: Launch | None = None,
    show_progress: bool = True,
) -> dict:
    """Continue the run in ``run_dir`` (see afcli.pretrain.cmat.resume_run)."""
    run_dir = Path(run_dir)
    settings = prepare_run(None, run_dir, {"epochs": epochs, "device": device, "store": store})
    return launch(
        (plan or Launch()).check(settings.device),
        train_rank,
        "finetune cast",
        CASTTask,
        (settings, run_dir),
        settings,
        run_dir,
        True,
        show_progress,
    )
