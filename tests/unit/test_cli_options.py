"""Options that mean one thing are declared once (cli/root.py) and behave alike in every command."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import click

from boda.cli.root import COMMAND_MODULES

CLI = Path(__file__).resolve().parents[2] / "src" / "boda" / "cli"


def _commands() -> Iterator[tuple[str, click.Command]]:
    for module_name in sorted(set(COMMAND_MODULES.values())):
        stack: list[tuple[str, click.Command]] = [
            (c.name or "", c) for c in importlib.import_module(f"boda.cli.{module_name}").COMMANDS
        ]
        while stack:
            path, command = stack.pop()
            yield path, command
            if isinstance(command, click.Group):
                stack += [(f"{path} {name}", sub) for name, sub in command.commands.items()]


def test_policy_is_one_option_everywhere() -> None:
    found = {}
    for path, command in _commands():
        for param in command.params:
            if "--policy" in getattr(param, "opts", ()):
                assert isinstance(param, click.Option) and param.opts == ["--policy"], path
                assert param.name == "policy_path", path
                assert isinstance(param.type, click.Path) and not param.type.dir_okay, path
                assert param.type.type is Path, path
                found[path] = param.required
    assert found == {
        "policy eval": True,
        "policy check": False,
        "gc plan": False,
        "gc apply": False,
        "ecr policy put": False,
        "ecr policy render": False,
    }
    declared = [p.name for p in sorted(CLI.glob("*.py")) if '"--policy"' in p.read_text()]
    assert declared == ["root.py"]
