"""Turn any exception into one line on stderr (and, with --json, one JSON object on stdout) and a
documented exit code. `BODA_DEBUG=1` prints the whole chain of causes, for every error."""

from __future__ import annotations

import os
import sys
import traceback

import click

from boda.cli.render import dumps, printable
from boda.errors import EXIT_FAILURE, EXIT_USAGE, BodaError, UsageError


def report(exc: BaseException, *, as_json: bool = False) -> int:
    """Print `exc` for a person (and for a script with `as_json`) and return the exit code."""
    if isinstance(exc, click.exceptions.Abort | KeyboardInterrupt):
        click.echo("boda: interrupted", err=True)
        return 130
    if isinstance(exc, BrokenPipeError):
        return EXIT_FAILURE
    if isinstance(exc, click.ClickException):
        code = EXIT_USAGE if isinstance(exc, click.UsageError | click.BadParameter) else exc.exit_code
        error = UsageError(exc.format_message()) if code == EXIT_USAGE else BodaError(exc.format_message())
    elif isinstance(exc, BodaError):
        error = exc
    else:
        summary = str(exc).splitlines()[0] if str(exc) else ""
        error = BodaError(
            f"unexpected error: {type(exc).__name__}: {summary}".rstrip(": "),
            hint=None if _debug() else "set BODA_DEBUG=1 to see the traceback",
        )
    if _debug() and not isinstance(exc, click.ClickException):
        click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
    click.echo(f"boda: error: {_one_line(error.diagnostics())}", err=True)
    if as_json:
        click.echo(dumps({"error": error.to_json()}))
    sys.stderr.flush()
    return error.exit_code if not isinstance(exc, click.ClickException) else code


def _debug() -> bool:
    return bool(os.environ.get("BODA_DEBUG"))


def _one_line(text: str) -> str:
    return printable(" ".join(text.split()))
