"""serve: the read-only HTTP API and dashboard (needs the `web` extra)."""

from __future__ import annotations

import click

from boda.cli.render import note
from boda.config import load_config
from boda.errors import UsageError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="The TCP port to listen on.",
)
def serve(host: str, port: int) -> None:
    """Serve the read-only HTTP API (/api/...) and the dashboard (/) of this project."""
    try:
        import uvicorn

        from boda.web.app import create_app
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in {"fastapi", "uvicorn", "starlette", "pydantic"}:
            raise
        raise UsageError(f"boda serve needs {exc.name}: install boda[web]") from exc

    config = load_config((click.get_current_context().find_root().obj or {}).get("config"))
    note(f"boda: serving {config.path} on http://{host}:{port}/ (read-only)")
    uvicorn.run(create_app(config), host=host, port=port)


COMMANDS = [serve]
