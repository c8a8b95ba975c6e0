"""Generate shell completions and man pages from the Typer app itself (``make docs``).

``python -m afcli.docgen`` writes them; ``--check`` exits 1 when the checked-in files are stale
(the test suite runs the same comparison).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHELLS = {"bash": "afcli.bash", "zsh": "_afcli", "fish": "afcli.fish"}


def _roff(text: str) -> str:
    lines = (text or "").strip().replace("\\", "\\\\").splitlines()
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line for line in lines)


def _commands(command, path: list[str]):
    """(path, command) for every leaf command, depth first, in registration order."""
    children = getattr(command, "commands", None)
    if not children:
        yield path, command
        return
    for name, child in children.items():
        yield from _commands(child, [*path, name])


def _man_page(path: list[str], command, version: str) -> str:
    title = "-".join(path).upper()
    lines = [
        f'.TH {title} 1 "" "afcli {version}" "afcli manual"',
        ".SH NAME",
        f"{' '.join(path)} \\- {_roff((command.help or '').splitlines()[0] if command.help else '')}",
        ".SH SYNOPSIS",
        f".B {' '.join(path)}",
    ]
    arguments = [p for p in command.params if getattr(p, "param_type_name", "") == "argument"]
    options = [p for p in command.params if getattr(p, "param_type_name", "") == "option"]
    operands = [p.name.upper() + ("..." if p.nargs == -1 else "") for p in arguments]
    operands += ["COMMAND [ARGS]..."] if getattr(command, "commands", None) else []
    lines.append(" ".join(["[OPTIONS]", *operands]))
    if command.help:
        lines += [".SH DESCRIPTION", _roff(command.help)]
    if arguments:
        lines.append(".SH ARGUMENTS")
        for param in arguments:
            lines += [".TP", f".B {param.name.upper()}", _roff(getattr(param, "help", "") or "")]
    if options:
        lines.append(".SH OPTIONS")
        for param in options:
            if getattr(param, "hidden", False):
                continue
            default = param.default if not param.is_flag and param.default not in (None, "") else None
            flags = ", ".join([*param.opts, *param.secondary_opts])
            lines += [
                ".TP",
                f".B {_roff(flags)}",
                _roff((param.help or "") + (f" [default: {default}]" if default is not None else "")),
            ]
    lines += [".SH SEE ALSO", "afcli(1), README.md and docs/ in the afcli repository"]
    return "\n".join(lines) + "\n"


def render() -> dict[str, str]:
    """Every generated file, relative to the repository root → its content."""
    import typer
    from typer._completion_shared import get_completion_script

    from afcli import __version__
    from afcli.cli import app

    files = {
        f"completions/{name}": get_completion_script(prog_name="afcli", complete_var="_AFCLI_COMPLETE", shell=shell)
        for shell, name in SHELLS.items()
    }
    root = typer.main.get_command(app)
    root.help = app.info.help
    files["man/afcli.1"] = _man_page(["afcli"], root, __version__).replace(
        ".SH SEE ALSO",
        ".SH COMMANDS\n"
        + "\n".join(
            f".TP\n.B afcli {' '.join(p)}\n{_roff((c.help or '').splitlines()[0])}" for p, c in _commands(root, [])
        )
        + "\n.SH SEE ALSO",
    )
    for path, command in _commands(root, []):
        files[f"man/afcli-{'-'.join(path)}.1"] = _man_page(["afcli", *path], command, __version__)
    return files


def stale(root: Path = ROOT) -> list[str]:
    wanted = render()
    existing = {
        p.relative_to(root).as_posix() for d in ("completions", "man") for p in (root / d).glob("*") if p.is_file()
    }
    different = [
        name for name, text in wanted.items() if not (root / name).is_file() or (root / name).read_text() != text
    ]
    return sorted(different + sorted(existing - set(wanted)))


def main() -> None:
    if "--check" in sys.argv[1:]:
        outdated = stale()
        if outdated:
            print("stale generated docs (run `make docs`): " + ", ".join(outdated), file=sys.stderr)
            sys.exit(1)
        return
    files = render()
    for directory in ("completions", "man"):
        (ROOT / directory).mkdir(exist_ok=True)
        for old in (ROOT / directory).glob("*"):
            if old.is_file() and f"{directory}/{old.name}" not in files:
                old.unlink()
    for name, text in files.items():
        (ROOT / name).write_text(text)
    print(f"wrote {len(files)} files into completions/ and man/")


if __name__ == "__main__":
    main()
