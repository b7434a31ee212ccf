"""The root command group and the options every command shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from boda import __version__

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    """`--json`: print the result as JSON on stdout."""
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(func)


def by_option(func: F) -> F:
    """`--by WHO`: who acts (default: CI identity variables, then $USER)."""
    return click.option("--by", help="Who is acting (default: CI identity, then $USER).")(func)


def open_context() -> Any:
    """Load the config named on the root group and return a services Context."""
    from boda.config import load_config
    from boda.services.context import Context

    obj = click.get_current_context().find_root().obj or {}
    return Context(load_config(obj.get("config")))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="BODA_CONFIG",
    help="Path of boda.toml (default: ./boda.toml or a parent's).",
)
@click.version_option(__version__, prog_name="boda")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """boda: build once, deploy anywhere.

    Records which commit built which digest, promotes that exact digest between environments
    behind evidence gates, rolls back in one command, and expires old images without ever
    expiring one that is in use.
    """
    ctx.obj = {"config": config_path}


def _register() -> None:
    from boda.cli import ecr, gc, images, lifecycle, policy, tools, web

    for module in (lifecycle, images, policy, gc, tools, ecr, web):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()
