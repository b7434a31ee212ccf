"""init and demo."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from boda.cli.render import note
from boda.config import SAMPLE_CONFIG, load_config
from boda.errors import Conflict


@click.command()
@click.option(
    "--path",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("boda.toml"),
    show_default=True,
    help="Where to write the config.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path, force: bool) -> None:
    """Write a commented example boda.toml and create the ledger it names."""
    from boda.services.context import create_ledger

    if path.exists() and not force:
        raise Conflict(f"{path} exists; pass --force to overwrite it")
    path.write_text(SAMPLE_CONFIG, encoding="utf-8")
    note(f"wrote {path}")
    note(f"ledger ready: {create_ledger(load_config(path))}")


@click.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="A fresh folder for the demo's registry, ledger and config.",
)
@click.option(
    "--images",
    default=12,
    show_default=True,
    type=click.IntRange(4, 200),
    help="How many commits (one image each) to build.",
)
def demo(folder: Path, images: int) -> None:
    """The whole lifecycle on the embedded default (OCI layout + SQLite), narrated."""
    from boda.cli.gc import plan_text
    from boda.cli.lifecycle import history_text, status_text
    from boda.services.demo import run_demo

    renderers = {"status": status_text, "history": history_text, "plan": plan_text}
    # Suggest the command the user can type: `boda` when it is on PATH, else the path to this one.
    argv0 = Path(sys.argv[0]).resolve()
    on_path = shutil.which("boda")
    if on_path and Path(on_path).resolve() == argv0:
        command = "boda"
    else:
        command = f"{sys.executable} -m boda" if argv0.name == "__main__.py" else str(argv0)
    run_demo(
        folder,
        images=images,
        say=click.echo,
        show=lambda kind, data: click.echo(renderers[kind](data)),
        command=command,
    )


COMMANDS = [init, demo]
