"""The root command group and the options every command shares.

Start-up is part of every command's speed: the group imports a command's module only when that
command runs (COMMAND_MODULES), and command functions import their service inside their body, so
`boda --help` and `boda status` pay neither for the registry backends nor for other commands.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from boda import __version__

F = TypeVar("F", bound=Callable[..., Any])


def free_text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Option callback for free text a person gives (`--reason`, `--by`): refused as it is parsed,
    before any config, registry or ledger is touched, by the rule every service applies
    (boda.types.check_free_text): one line, exit 2."""
    from boda.types import check_free_text

    return None if value is None else check_free_text(value, param.opts[0])


def url_text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Option callback for a URL (`--url`), refused as it is parsed (boda.types.check_url)."""
    from boda.types import check_url

    return None if value is None else check_url(value, param.opts[0])


def json_option(func: F) -> F:
    """`--json`: print the result as JSON on stdout."""
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(func)


def by_option(func: F) -> F:
    """`--by WHO`: who acts (default: CI identity variables, then $USER)."""
    return click.option("--by", callback=free_text, help="Who is acting (default: CI identity, then $USER).")(
        func
    )


def sign_option(func: F) -> F:
    """`--sign KEY`: sign what the command records (a PEM private key file or kms:KEY-ID-OR-ARN)."""
    return click.option(
        "--sign",
        metavar="KEY",
        help="Also write a signed statement of it, signed with KEY: a PEM private key or"
        " kms:KEY-ID-OR-ARN (default: [evidence] sign).",
    )(func)


def policy_option(
    help: str = "An ECR lifecycle policy JSON file (default: retention.policy).", *, required: bool = False
) -> Callable[[F], F]:
    """`--policy FILE`: an ECR lifecycle policy document."""
    return click.option(
        "--policy",
        "policy_path",
        required=required,
        type=click.Path(dir_okay=False, path_type=Path),
        help=help,
    )


def load_root_config() -> Any:
    """The config named on the root group (or found from the working directory)."""
    from boda.config import load_config

    obj = click.get_current_context().find_root().obj or {}
    config = load_config(obj.get("config"))
    from boda import deadline

    deadline.configure(config.limits.deadline, source="[limits] deadline")
    return config


def skip_runtime_option(func: F) -> F:
    """`--skip-runtime RUNTIME` (repeatable): do not read that configured runtime in this run."""
    return click.option(
        "--skip-runtime",
        "skip_runtimes",
        multiple=True,
        metavar="RUNTIME",
        help="A configured runtime not to read in this run (its images are then not protected).",
    )(func)


def open_context(*, create_ledger: bool = False) -> Any:
    """Load the config named on the root group and return a services Context (`create_ledger`:
    a SQLite ledger file that does not exist yet is created, as `boda build` needs)."""
    from boda.services.context import Context

    return Context(load_root_config(), create_ledger=create_ledger)


# Which module defines each command: only the module of the command being run is imported, so
# `boda digest` does not pay for the code of `boda gc` (start-up is part of a command's speed).
COMMAND_MODULES = {
    "build": "lifecycle",
    "evidence": "lifecycle",
    "promote": "lifecycle",
    "rollback": "lifecycle",
    "status": "lifecycle",
    "history": "lifecycle",
    "whereis": "lifecycle",
    "verify": "lifecycle",
    "repair": "repair",
    "events": "lifecycle",
    "digest": "crane",
    "copy": "crane",
    "tags": "crane",
    "untag": "crane",
    "policy": "policy",
    "gc": "gc",
    "pin": "gc",
    "unpin": "gc",
    "init": "tools",
    "demo": "tools",
    "ecr": "ecr",
    "runtime": "runtime",
    "serve": "web",
    "attest": "attest",
    "keys": "attest",
}


class LazyGroup(click.Group):
    """A group that imports a command's module when the command is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMAND_MODULES.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(f"boda.cli.{module_name}")
        found: click.Command | None = next((c for c in module.COMMANDS if c.name == cmd_name), None)
        if found is not None:
            _accept_config_anywhere(found)
        return found


def _remember_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        root = ctx.find_root()
        root.obj = {**(root.obj or {}), "config": value}


def _accept_config_anywhere(command: click.Command) -> None:
    """Let `--config` follow the subcommand too (`boda status APP --config f.toml`)."""
    if any("--config" in p.opts for p in command.params):
        return
    command.params.append(
        click.Option(
            ["--config"],
            type=click.Path(dir_okay=False),
            expose_value=False,
            is_eager=True,
            callback=_remember_config,
            help="Path of boda.toml (also accepted before the command).",
        )
    )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _accept_config_anywhere(sub)


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
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
    from boda import deadline
    from boda.errors import UsageError

    try:
        deadline.start()  # the config, once loaded, may set another budget (open_context)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
