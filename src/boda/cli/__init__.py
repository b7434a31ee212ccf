"""The `boda` command: parse, call one service, render. No lifecycle rules here."""

from __future__ import annotations

import sys

from boda.cli.root import cli


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (see boda.errors for the codes)."""
    from boda import deadline

    try:
        cli.main(args=argv, prog_name="boda", standalone_mode=False)
    except SystemExit as exc:  # click's own exits (--help, --version)
        return int(exc.code or 0)
    except BaseException as exc:
        from boda.cli.errors import report

        args = sys.argv[1:] if argv is None else argv
        return report(exc, as_json="--json" in args[: args.index("--")] if "--" in args else "--json" in args)
    finally:
        deadline.clear()  # the command is over (a caller may run more in this process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
