"""Turn any exception into one line on stderr and a documented exit code."""

from __future__ import annotations

import os
import sys

import click

from boda.errors import EXIT_FAILURE, EXIT_USAGE, BodaError


def report(exc: BaseException) -> int:
    """Print `exc` for a person and return the exit code (see boda.errors)."""
    if isinstance(exc, BodaError):
        click.echo(f"boda: error: {exc.diagnostics()}", err=True)
        return exc.exit_code
    if isinstance(exc, click.ClickException):
        click.echo(f"boda: error: {exc.format_message()}", err=True)
        return EXIT_USAGE if isinstance(exc, click.UsageError | click.BadParameter) else exc.exit_code
    if isinstance(exc, click.exceptions.Abort | KeyboardInterrupt):
        click.echo("boda: interrupted", err=True)
        return 130
    if isinstance(exc, BrokenPipeError):
        return EXIT_FAILURE
    if os.environ.get("BODA_DEBUG"):
        raise exc
    summary = str(exc).splitlines()[0] if str(exc) else ""
    click.echo(f"boda: unexpected error: {type(exc).__name__}: {summary}", err=True)
    click.echo("boda: set BODA_DEBUG=1 to see the traceback", err=True)
    sys.stderr.flush()
    return EXIT_FAILURE
