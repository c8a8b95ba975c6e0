"""``afcli caption``: captions, referrals and noun phrases of scene instances, with text embeddings."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from afcli.cli.common import JsonOption, apply_json, handle_errors
from afcli.console import emit, progress, stdout, table


@handle_errors
def caption_command(
    store: Path = typer.Argument(..., help="A scene store (afcli data import ROOT --benchmark scannet)."),
    encoder: Optional[List[str]] = typer.Option(
        None, "--encoder", help="Text embeddings: minilm-l6 (offline), clip[:arch@tag], a hub id or folder; repeat."
    ),
    weights: Optional[str] = typer.Option(None, "--weights", help="The (single) encoder's folder."),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network (also HF_HUB_OFFLINE=1)."),
    phrases: str = typer.Option("auto", "--phrases", help="Noun phrases: auto, spacy (en_core_web_sm) or rules."),
    referrals: int = typer.Option(3, "--referrals", help="Referrals per instance, each unique in its room."),
    captioner: Optional[str] = typer.Option(
        None, "--captioner", help="Also caption each instance's best views: blip, git, a hub id or a folder."
    ),
    captioner_weights: Optional[str] = typer.Option(None, "--captioner-weights", help="The captioner's folder."),
    views: int = typer.Option(1, "--views", help="Best views captioned per instance (--captioner)."),
    frames_root: Optional[str] = typer.Option(
        None, "--frames-root", help="RGB-D frames at ROOT/<scene>/ [beside each scene's mesh] (--captioner)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:i] (the captioner's)."),
    texts: Optional[List[Path]] = typer.Option(
        None, "--texts", help="Also add these SceneVerse-format text files (scan_id, target_id, utterance); repeat."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Drop the text table and caption every scene again."),
    json: JsonOption = False,
) -> None:
    """Per-instance captions and referrals unique in their room (SceneVerse's scene-graph rules), their
    noun phrases and sentence embeddings, into the store's text table."""
    apply_json(json)
    from afcli.caption.stage import CaptionSettings, caption_store

    settings = CaptionSettings(
        encoder or ["minilm-l6"],
        phrases,
        referrals,
        weights,
        offline,
        captioner,
        captioner_weights,
        views,
        frames_root,
        device,
        [str(p) for p in texts or []],
    )
    with progress("caption") as (advance, set_total):
        result = caption_store(store, settings, overwrite=overwrite, advance=advance, on_total=set_total)

    def show(r: dict) -> None:
        rows = [
            ("scenes", f"{r['captioned']} captioned ({r['already_done']} done before)"),
            ("captions", str(r["captions"])),
            ("referrals", f"{r['referrals']} (afcli's each unique in its room)"),
            ("texts added from files", str(r["imported_texts"])),
            ("noun phrases", r["phrases"]),
            ("embeddings", ", ".join(r["encoders"])),
            ("captioner", r["captioner"] or "none (template captions)"),
            ("seconds", ", ".join(f"{k} {v}" for k, v in r["seconds"].items())),
        ]
        stdout.print(table("caption", ["", ""], rows, header=False))

    emit(result, show)
