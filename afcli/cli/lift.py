"""``afcli render`` and ``afcli lift``: multi-view renders and 2D → 3D feature lifting."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, progress, stdout, table

TARGET_HELP = "A store (.h5) or a folder of shapes (imported into <folder>/store.h5 first)."


def _target(target: Path, store: Optional[Path]) -> Path:
    from afcli.data.importer import resolve_store

    with progress("import") as (advance, set_total):
        path, _ = resolve_store(target, store, advance, set_total)
    return path


@handle_errors
def render_command(
    target: Path = typer.Argument(..., help=TARGET_HELP),
    store: Optional[Path] = typer.Option(None, "--store", help="Store to use for a folder of shapes."),
    views: int = typer.Option(12, "--views", help="Cameras per sample."),
    size: int = typer.Option(224, "--size", help="Image side in pixels."),
    rig: str = typer.Option("sphere", "--rig", help="sphere: two rings (+30°, -20°); ring: one ring at 20°."),
    backend: str = typer.Option("auto", "--backend", help="Mesh renderer: auto, embree or torch."),
    splat_radius: Optional[float] = typer.Option(
        None, "--splat-radius", help="Point splat radius in pixels (default 2 at 224 px)."
    ),
    background: int = typer.Option(255, "--background", help="Grey level of empty pixels (0..255)."),
    light: str = typer.Option(
        "-0.4,-0.6,-1", "--light", help="Direction towards the light, camera coordinates X,Y,Z (y down)."
    ),
    keep_views: bool = typer.Option(
        False, "--keep-views", help="Write rgb, depth, index, K, c2w to /views/<rig> (large)."
    ),
    preview: Optional[Path] = typer.Option(None, "--preview", help="Write a contact sheet PNG of the first samples."),
    preview_count: int = typer.Option(4, "--preview-count", help="Samples on the contact sheet."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:i]."),
    json: JsonOption = False,
) -> None:
    """Render every sample headless: RGB, depth, visible face/point ids and cameras."""
    apply_json(json)
    from afcli.render.stage import RenderSettings, render_store

    settings = RenderSettings(views, size, rig, backend, splat_radius, background, light).check()
    path = _target(target, store)
    with progress("render") as (advance, set_total):
        result = render_store(
            path,
            settings,
            keep_views=keep_views,
            preview=preview,
            preview_count=preview_count,
            device=device,
            advance=advance,
            on_total=set_total,
        )
    emit(
        result,
        lambda r: stdout.print(
            table("render", ["", ""], [(k, v) for k, v in r.items() if v is not None], header=False)
        ),
    )


@handle_errors
def lift_command(
    target: Path = typer.Argument(..., help=TARGET_HELP),
    teacher: Optional[str] = typer.Option(
        None,
        "--teacher",
        help="dinov3[:vitl16], dinov2[:vitb14|…-reg], clip[:ViT-B-16@openai], effnet-lite0[:s16|s32].",
    ),
    weights: Optional[str] = typer.Option(
        None, "--weights", help="Local weights folder or file (default: the hub id in the local cache)."
    ),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network (also HF_HUB_OFFLINE=1)."),
    recipe: Optional[Path] = typer.Option(
        None, "--recipe", help="A lift recipe (recipes/cmat/lift*.yaml); options override it."
    ),
    store: Optional[Path] = typer.Option(None, "--store", help="Store to use for a folder of shapes."),
    views: Optional[int] = typer.Option(None, "--views", help="Cameras per sample [12]."),
    size: Optional[int] = typer.Option(None, "--size", help="Render side in pixels [224]."),
    rig: Optional[str] = typer.Option(None, "--rig", help="sphere or ring [sphere]."),
    backend: Optional[str] = typer.Option(None, "--backend", help="Mesh renderer: auto, embree or torch [auto]."),
    splat_radius: Optional[float] = typer.Option(
        None, "--splat-radius", help="Point splat radius in pixels [2 at 224 px]."
    ),
    background: Optional[int] = typer.Option(None, "--background", help="Grey level of empty pixels [255]."),
    light: Optional[str] = typer.Option(
        None, "--light", help="Direction towards the light, camera X,Y,Z [-0.4,-0.6,-1]."
    ),
    interp: Optional[str] = typer.Option(None, "--interp", help="nearest (the paper's) or bilinear [nearest]."),
    normalize_views: Optional[bool] = typer.Option(
        None, "--normalize-views/--no-normalize-views", help="L2-normalise each view's features before averaging."
    ),
    view_weight: Optional[str] = typer.Option(None, "--view-weight", help="none or cosine (|normal · ray|) [none]."),
    tolerance: Optional[float] = typer.Option(
        None, "--tolerance", help="Depth tolerance of visibility, fraction of the object diameter [0.01]."
    ),
    blocks: Optional[int] = typer.Option(
        None, "--blocks", help="DINO: concatenate the last K blocks (no final norm) [1]."
    ),
    teacher_size: Optional[int] = typer.Option(
        None, "--teacher-size", help="Teacher input side in pixels [model card]."
    ),
    batch_views: Optional[int] = typer.Option(None, "--batch-views", help="Views per teacher batch [12]."),
    frames_root: Optional[str] = typer.Option(
        None, "--frames-root", help="Scenes: RGB-D frames at ROOT/<scene>/ [beside each scene's mesh]."
    ),
    frame_step: Optional[int] = typer.Option(None, "--frame-step", help="Scenes: every K-th frame [1]."),
    depth_mode: Optional[str] = typer.Option(
        None, "--depth-mode", help="Scenes: visibility test relative (OpenScene) or absolute (D3Fields) [relative]."
    ),
    depth_tolerance: Optional[float] = typer.Option(
        None, "--depth-tolerance", help="Scenes: relative, share of the observed depth; absolute, metres [0.25]."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo samples already lifted with this teacher."),
    gpus: int = typer.Option(
        1,
        "--gpus",
        help="Processes, one per GPU (rank r on cuda:r; with --device cpu, CPU processes); shards merged at the end.",
    ),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda[:i] [auto]."),
    json: JsonOption = False,
) -> None:
    """Lift a 2D teacher's patch features onto every point: /features/<teacher> (S, N, D) fp16; scenes
    from their RGB-D frames."""
    apply_json(json)
    from afcli.config import load_recipe, override
    from afcli.lift.pipeline import LiftSettings, lift_store, load_settings_teacher
    from afcli.runtime import check_processes

    settings = load_recipe(recipe, LiftSettings, "lift")[0] if recipe is not None else LiftSettings()
    settings = override(
        settings,
        teacher=teacher,
        weights=weights,
        blocks=blocks,
        teacher_size=teacher_size,
        batch_views=batch_views,
        device=device,
        **{
            "render.views": views,
            "render.size": size,
            "render.rig": rig,
            "render.backend": backend,
            "render.splat_radius": splat_radius,
            "render.background": background,
            "render.light": light,
            "lift.interp": interp,
            "lift.normalize_views": normalize_views,
            "lift.view_weight": view_weight,
            "lift.tolerance": tolerance,
            "frames.root": frames_root,
            "frames.step": frame_step,
            "frames.depth_mode": depth_mode,
            "frames.depth_tolerance": depth_tolerance,
        },
    )
    settings.offline = settings.offline or offline
    settings.overwrite = overwrite
    check_processes(gpus, settings.check().device)
    loaded = load_settings_teacher(settings, "cpu" if gpus > 1 else None)  # a missing model fails before any work
    path = _target(target, store)
    with progress(f"lift {settings.teacher}") as (advance, set_total):
        result = lift_store(path, settings, teacher=loaded, gpus=gpus, advance=advance, on_total=set_total)

    def show(r: dict) -> None:
        rows = [
            ("store", r["store"]),
            ("array", f"/{r['array']} (S, N, {r['dim']}) fp16"),
            ("teacher grid", f"{r['grid'][0]}x{r['grid'][1]}"),
            ("lifted", str(r["lifted"])),
            ("already done", str(r["already_done"])),
            ("done", f"{r['done']}/{r['samples']}"),
            ("unseen points (filled)", str(r["unseen_points"])),
            ("seconds", ", ".join(f"{k} {v}" for k, v in r["seconds"].items())),
            ("device", r["device"]),
        ]
        stdout.print(table(f"lift {r['teacher']}", ["", ""], rows, header=False))

    emit(result, show)
