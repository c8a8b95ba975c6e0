"""CAST heat maps: a batch's prompt inputs, prediction with votes, precise-BN re-estimation, and
the predictor ``afcli eval <benchmark>`` calls for a CAST run (afcli.methods.METHODS)."""

from __future__ import annotations

import numpy as np
import torch

from afcli.methods.cast.data import QueryData
from afcli.models.cast import CAST


def prompt_inputs(prompts: dict, batch: dict, device) -> dict:
    """CAST keyword inputs for a batch of prompt indices."""
    inputs = {}
    for kind in ("text", "image", "audio"):
        if prompts.get(kind) is not None and kind in batch:
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
    use: tuple[str, ...] = ("text", "image", "audio"),
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


def predict_run(run, store, split: str, options, advance=None, on_total=None):
    """The heat maps of a CAST run on the ``split`` queries of ``store`` (afcli.eval.affordance's
    predictor for CAST runs): prompts encoded as the run encoded them, modalities as ``options.use``
    asks (others: the null token), ``options.votes`` passes (default: the run's recipe's)."""
    import dataclasses
    from pathlib import Path

    from afcli.engine.run import read_settings, saved_model
    from afcli.errors import InputError
    from afcli.eval.affordance import Predictions
    from afcli.methods.cast.online import tuned_image_encoder
    from afcli.methods.cast.prompts import encode_prompts
    from afcli.methods.cast.settings import PROMPT_KINDS, CASTSettings
    from afcli.runtime import pick_device
    from afcli.store import open_store
    from afcli.store.queries import read_queries

    asked = ("text", "image") if options.use == "both" else tuple(options.use.split("+"))
    if options.use != "auto" and (not asked or any(kind not in PROMPT_KINDS for kind in asked)):
        raise InputError(f"--prompt must be auto, both, or text, image, audio joined by +, got {options.use!r}")
    run = Path(run)
    settings = read_settings(CASTSettings, run)
    device = pick_device(options.device)
    folder = saved_model(run, "cast", "a CAST run or saved CAST model")
    model = CAST.from_pretrained(folder).to(device)
    trained = tuple(k for k in PROMPT_KINDS if getattr(settings.prompts, k))
    use = trained if options.use == "auto" else asked
    for kind in use:
        if kind not in trained:
            raise InputError(f"--prompt {options.use}: the run has no {kind} encoder", run)
    if not model.config.null_prompt and set(use) != set(trained):
        raise InputError("this model has no null prompt: it needs every modality it was trained with", run)
    with open_store(store) as f:
        table = read_queries(f, store)
    rows = table.rows(split)
    if not len(rows):
        raise InputError(f"no {split} queries in the store", store)
    wanted = dataclasses.replace(settings.prompts, **{kind: None for kind in PROMPT_KINDS if kind not in use})
    tuned = tuned_image_encoder(settings.prompts, folder) if "image" in use else None
    prompts = encode_prompts(
        wanted,
        store,
        table,
        rows,
        all_questions=False,
        device=device,
        image_encoder=None if tuned is None else tuned.to(device),
    )
    data = QueryData(store, split, prompts, training=False)
    votes = options.votes if options.votes is not None else settings.votes
    (on_total or (lambda n: None))(-(-len(data) // options.batch_size))
    pred, gt = predict(model, data, batch_size=options.batch_size, device=device, votes=votes, use=use, advance=advance)
    return Predictions(
        pred=pred,
        gt=gt,
        objects=np.array([table.object[r] for r in data.rows]),
        affordances=np.array([table.affordance[r] for r in data.rows]),
        ids=[table.id[r] for r in data.rows],
        samples=np.array(
            [data.sample_row(i, np.random.default_rng([data.seed, data.epoch, i])) for i in range(len(data))]
        ),
        prompts=[table.text[r][0] if table.text[r] else Path(table.image[r]).name for r in data.rows],
        model=folder,
        info={"votes": votes, "prompts": list(use), "prompt_encoders": prompts["provenance"]},
        # runs with a sound encoder are also scored on the queries that have a sound, whatever is fed
        groups={"with sound": np.array([bool(table.audio[r]) for r in data.rows])} if settings.prompts.audio else {},
    )
