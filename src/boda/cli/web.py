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
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME[:PORT]",
    help="Also answer requests for this Host (a reverse proxy's public name); repeatable. Other Host"
    " names than the address served and localhost get 400 (a defence against DNS rebinding).",
)
def serve(host: str, port: int, allow_hosts: tuple[str, ...]) -> None:
    """Serve the read-only HTTP API (/api/...) and the dashboard (/) of this project."""
    try:
        import uvicorn

        from boda.web.app import create_app
        from boda.web.hosts import HostPolicy
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in {"fastapi", "uvicorn", "starlette", "pydantic"}:
            raise
        raise UsageError(f"boda serve needs {exc.name}: install boda[web]") from exc

    for name in allow_hosts:
        if not name.strip() or any(c.isspace() or c in "/?#@" for c in name):
            raise UsageError(f"--allow-host {name!r}: expected a host name, optionally with :PORT")
    from boda import deadline

    deadline.clear()  # a server runs until stopped; each request is bounded by its timeouts
    config = load_config((click.get_current_context().find_root().obj or {}).get("config"))
    policy = HostPolicy(host, port, tuple(n.strip().lower() for n in allow_hosts))
    note(f"boda: serving {config.path} on http://{host}:{port}/ (read-only; answers {policy.describe()})")
    uvicorn.run(create_app(config, hosts=policy), host=host, port=port)


COMMANDS = [serve]
