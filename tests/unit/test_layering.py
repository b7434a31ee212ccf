"""Layering and start-up: each layer imports only what is below it, heavy libraries only on demand."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from boda.cli.root import COMMAND_MODULES


def modules_after(code: str) -> set[str]:
    """Every module a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def loaded_after(code: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after running `code`."""
    return {name.split(".")[0] for name in modules_after(code)}


def test_the_cli_loads_no_backend_until_a_command_needs_it() -> None:
    loaded = loaded_after("import boda.cli")
    assert not loaded & {"httpx", "boto3", "botocore", "fastapi", "uvicorn", "psycopg", "sqlite3", "orjson"}


def test_a_registry_command_loads_neither_the_ledger_nor_other_commands() -> None:
    loaded = loaded_after(
        "from boda.cli.root import cli\ncli.get_command(None, 'digest')\nimport boda.services.images"
    )
    assert "httpx" not in loaded  # the OCI backend is imported when a registry is opened
    assert not loaded & {"sqlite3", "psycopg", "boto3", "fastapi"}
    commands = {m for m in modules_after("from boda.cli.root import cli\ncli.get_command(None, 'digest')")}
    assert "boda.cli.images" in commands and not commands & {
        "boda.cli.gc",
        "boda.cli.lifecycle",
        "boda.cli.ecr",
    }


@pytest.mark.parametrize(
    "layer", ["boda.services.promote", "boda.services.gc", "boda.policy.columnar", "boda.ledger"]
)
def test_lower_layers_do_not_import_the_cli_or_web(layer: str) -> None:
    modules = modules_after(f"import {layer}")
    assert not {m for m in modules if m.startswith(("boda.cli", "boda.web"))}
    assert not {m.split(".")[0] for m in modules} & {"click", "fastapi", "boto3"}


def test_every_command_is_mapped_to_its_module() -> None:
    for module_name in set(COMMAND_MODULES.values()):
        module = importlib.import_module(f"boda.cli.{module_name}")
        defined = {command.name for command in module.COMMANDS}
        mapped = {name for name, owner in COMMAND_MODULES.items() if owner == module_name}
        assert defined == mapped, module_name
