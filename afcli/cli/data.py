"""``afcli data``: make the built-in shape and audio-visual sets and import shapes into a store."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, progress, stdout, table
from afcli.errors import InputError

app = typer.Typer(
    help="Create the built-in shape set; import meshes, point clouds and datasets into a store.", no_args_is_help=True
)


@app.command("synth")
@handle_errors
def synth(
    out: Path = typer.Argument(..., help="Folder to write meshes/ and manifest.json into."),
    n: int = typer.Option(240, "--n", help="Number of objects (categories in turn)."),
    seed: int = typer.Option(0, "--seed", help="Same seed, byte-identical output."),
    json: JsonOption = False,
) -> None:
    """Write procedural objects with part labels, affordances and questions (the demo and test set)."""
    apply_json(json)
    from afcli.data.synth import synthesize

    with progress("synth") as (advance, set_total):
        set_total(n)
        result = synthesize(out, n, seed, advance)
    emit(
        result, lambda r: stdout.print(f"wrote {r['shapes']} shapes of {len(r['categories'])} categories to {r['out']}")
    )


@app.command("metaworld")
@handle_errors
def metaworld(
    out: Path = typer.Argument(
        ..., help="Folder to write meshes/ and manifest.json into (then afcli data import OUT)."
    ),
    objects: Optional[str] = typer.Option(
        None, "--objects", help="Comma-separated subset: mug,hammer,thermos,faucet,drawer,coffeemachine."
    ),
    json: JsonOption = False,
) -> None:
    """Real part-split CAD objects of the metaworld package (pip install --no-deps metaworld), built-in format."""
    apply_json(json)
    from afcli.data.metaworld import write_objects

    with progress("metaworld") as (advance, _):
        result = write_objects(out, objects.split(",") if objects else None, advance)
    emit(result, lambda r: stdout.print(f"wrote {r['objects']} objects ({', '.join(r['categories'])}) to {r['out']}"))


@app.command("dfc-pairs")
@handle_errors
def dfc_pairs(
    store: Path = typer.Argument(..., help="A store with kept renders and true parts (the built-in shapes)."),
    out: Path = typer.Argument(..., help="Folder to write images/, 2d_annotations/ and selected_annotations.json."),
    taxonomy: str = typer.Option(
        "builtin", "--taxonomy", help="builtin, an afcli taxonomy .json or an official folder."
    ),
    rig: str = typer.Option("sphere", "--rig", help="Which kept renders (/views/<rig>)."),
    split: str = typer.Option("test", "--split", help="Objects of this split (all: every object)."),
    trials: int = typer.Option(2, "--trials", help="View pairs per object pair (the code: 6)."),
    pairs: int = typer.Option(20, "--pairs", help="Object pairs per function at most."),
    max_points: int = typer.Option(10000, "--max-points", help="Correspondences per trial at most (the code: 10000)."),
    seed: int = typer.Option(1234, "--seed", help="Seed of the pair, view and point draws."),
    json: JsonOption = False,
) -> None:
    """Dense functional correspondence pairs in the official annotation layout, from functionally aligned 3D objects."""
    apply_json(json)
    from afcli.data.dfc import write_pairs

    with progress("dfc-pairs") as (advance, _):
        result = write_pairs(
            store,
            out,
            taxonomy=taxonomy,
            rig=rig,
            split=split,
            trials=trials,
            pairs_per_function=pairs,
            max_points=max_points,
            seed=seed,
            advance=advance,
        )
    emit(
        result,
        lambda r: stdout.print(
            f"wrote {r['trials']} trials of {r['pairs']} object pairs ({', '.join(r['functions'])}) to {r['out']}"
        ),
    )


@app.command("synth-av")
@handle_errors
def synth_av(
    out: Path = typer.Argument(
        ..., help="Folder to write the set into, in AVAGD's format (csv, images, masks, audio)."
    ),
    shapes: int = typer.Option(6, "--shapes", help="Objects per (category, action)."),
    views: int = typer.Option(3, "--views", help="Renders per object."),
    size: int = typer.Option(256, "--size", help="Image side in pixels."),
    clips: int = typer.Option(4, "--clips", help="Synthetic sounds per action."),
    pairs: int = typer.Option(2, "--pairs", help="Sounds paired with each image (one csv row each)."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same set."),
    json: JsonOption = False,
) -> None:
    """Write the built-in audio-visual affordance set: renders of the built-in shapes with function and
    dependency masks from their parts, and action sounds (synthetic; real recordings where Debian's
    tuxpaint-stamps-default is installed)."""
    apply_json(json)
    from afcli.data.avsynth import ACTIONS, TUXPAINT, synthesize_av

    with progress("synth-av") as (advance, set_total):
        set_total(len(ACTIONS) * shapes)
        result = synthesize_av(out, shapes, views, size, clips, pairs, seed, advance=advance)

    def show(r: dict) -> None:
        stdout.print(
            table("image-sound pairs written", ["split", "pairs"], [(k, str(v)) for k, v in r["pairs"].items()])
        )
        if not r["real_recordings"]:
            stdout.print(f"no real recordings found in {TUXPAINT}: `apt-get install tuxpaint-stamps-default` adds them")

    emit(result, show)


@app.command("synth-rooms")
@handle_errors
def synth_rooms(
    out: Path = typer.Argument(
        ..., help="Folder to write the rooms into, as ScanNet scans (meshes, labels, RGB-D frames)."
    ),
    count: int = typer.Option(10, "--n", help="Rooms (bedroom, living room, kitchen, bathroom, office in turn)."),
    frames: int = typer.Option(16, "--frames", help="RGB-D frames rendered per room."),
    max_edge: float = typer.Option(0.15, "--max-edge", help="Longest mesh edge in metres (vertex spacing)."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same rooms."),
    json: JsonOption = False,
) -> None:
    """Write the built-in indoor rooms: furniture and objects placed with support relations, ScanNet
    labels, superpoints and instances, and an RGB-D walk through each; import with
    afcli data import OUT --benchmark scannet."""
    apply_json(json)
    from afcli.data.rooms import synthesize_rooms

    with progress("synth-rooms") as (advance, set_total):
        set_total(count)
        result = synthesize_rooms(out, count, seed, frames, max_edge, advance=advance)
    emit(
        result,
        lambda r: stdout.print(
            f"{r['out']}: {r['rooms']} rooms, {r['instances']} instances, {r['vertices']} vertices"
            + ("" if r["metaworld"] else "; metaworld is not installed, so cups and bottles are built-in shapes")
            + (
                f"; {r['sweethome3d_models']} sweethome3d furniture models to draw from"
                if r["sweethome3d_models"]
                else "; `apt-get install sweethome3d-furniture` adds real furniture models"
            )
        ),
    )


def _parse_shard(value: str) -> tuple[int, int]:
    try:
        rank, world = (int(part) for part in value.split("/"))
    except ValueError:
        raise InputError(f"--shard {value!r}: expected RANK/WORLD, e.g. 0/4") from None
    return rank, world


@app.command("import")
@handle_errors
def import_(
    src: Path = typer.Argument(
        ..., help="A synth folder, a folder of meshes / point clouds / PIAD files, or one file."
    ),
    store: Path = typer.Option(..., "--store", help="Store to create or extend (resumes an interrupted import)."),
    points: int = typer.Option(2048, "--points", help="Points per sample."),
    seed: int = typer.Option(0, "--seed", help="Seed of the per-sample surface sampling."),
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="Skip unreadable shapes (marked failed) instead of stopping."
    ),
    shard: str = typer.Option(
        "0/1", "--shard", help="RANK/WORLD: import every WORLD-th shape into this rank's shard file."
    ),
    benchmark: Optional[str] = typer.Option(
        None,
        "--benchmark",
        help="SRC is a benchmark in its own format: laso, piad, piadv2, avagd (images, masks and sounds; "
        "also what afcli data synth-av writes), or scannet (whole scenes into a ragged store).",
    ),
    setting: Optional[str] = typer.Option(
        None,
        "--setting",
        help="Benchmark setting: PIAD Seen|Unseen, PIADv2 Seen|Unseen_aff|Unseen_obj [Seen]; scannet with "
        "Mask3D files: scannet (NYU40 labels) or scannet200.",
    ),
    size: int = typer.Option(512, "--size", help="avagd: image and mask side in the store (AVAGFormer uses 512)."),
    scene_format: str = typer.Option(
        "auto", "--format", help="scannet: auto, pointcept, mask3d or scans (ScanNet's own .ply + .json)."
    ),
    label_map: Optional[Path] = typer.Option(
        None, "--label-map", help="scannet scans: scannetv2-labels.combined.tsv [SRC/scannetv2-labels.combined.tsv]."
    ),
    json: JsonOption = False,
) -> None:
    """Sample, normalise and label shapes into the store (points, normals, heat maps, part ids, queries);
    with --benchmark avagd, images, function/dependency masks, sounds and their pairs; with --benchmark
    scannet, whole scenes with superpoints, ScanNet20/200 labels, instances and entities."""
    apply_json(json)
    if benchmark == "scannet":
        from afcli.data.scenes import import_scenes

        if shard != "0/1":
            raise InputError("--benchmark scannet imports a whole dataset: --shard does not apply")
        with progress("import scannet") as (advance, set_total):
            result = import_scenes(
                src,
                store,
                fmt=scene_format,
                setting=setting,
                label_map=label_map,
                skip_bad=skip_bad,
                advance=advance,
                on_total=set_total,
            )
        emit(result, _show_import)
        return
    if benchmark == "avagd":
        from afcli.data.avagd import import_avagd, read_rows

        if shard != "0/1" or setting is not None:
            raise InputError("--benchmark avagd imports a whole dataset: --shard and --setting do not apply")
        with progress("import avagd") as (advance, set_total):
            set_total(len({row["image"] for row in read_rows(src)}))
            result = import_avagd(src, store, size=size, skip_bad=skip_bad, advance=advance)
        emit(
            result,
            lambda r: stdout.print(
                f"{r['store']}: {r['images']} images, {r['clips']} sounds, {r['pairs']} image-sound pairs"
                + (f"; skipped {len(r['failed'])}: {', '.join(map(str, r['failed'][:5]))}" if r["failed"] else "")
            ),
        )
        return
    if benchmark is not None:
        from afcli.data.benchmarks import import_benchmark

        if shard != "0/1" or skip_bad:
            raise InputError("--benchmark imports a whole benchmark: --shard and --skip-bad do not apply")
        with progress(f"import {benchmark}") as (advance, set_total):
            result = import_benchmark(
                benchmark,
                src,
                store,
                setting=setting,
                num_points=points,
                seed=seed,
                advance=advance,
                on_total=set_total,
            )
        emit(
            result,
            lambda r: stdout.print(
                f"{r['store']}: {r['benchmark']} imported {r['imported']} clouds (already done {r['already_done']}), "
                f"{r['queries']} queries ({r['new_queries']} new)"
            ),
        )
        return
    if setting is not None:
        raise InputError("--setting needs --benchmark")
    from afcli.data.importer import import_shapes

    with progress("import") as (advance, set_total):
        result = import_shapes(
            src,
            store,
            num_points=points,
            seed=seed,
            skip_bad=skip_bad,
            shard=_parse_shard(shard),
            advance=advance,
            on_total=set_total,
        )

    emit(result, _show_import)


def _show_import(r: dict) -> None:
    stdout.print(
        f"{r['store']}: imported {r['imported']}, already done {r['already_done']}, "
        f"{r['done']}/{r['samples']} samples done"
    )
    if r["skipped"]:
        stdout.print(
            table(
                f"skipped {len(r['skipped'])}",
                ["id", "problem"],
                [(s["id"], s["error"]) for s in r["skipped"]],
                wrap_last=True,
            )
        )
