"""Untimed setup through boda's own services: record builds, promote them to the first environment
and record passing tests there, so that the timed command is the promotion a CI job runs next.

    python bench/setup_apps.py CONFIG COMMIT IMAGE_REF APP [APP...] [--dev ENV --evidence KIND]
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("commit")
    parser.add_argument("image")
    parser.add_argument("apps", nargs="+")
    parser.add_argument("--dev", help="promote to this environment after building")
    parser.add_argument("--evidence", help="record this kind of passing evidence in --dev")
    args = parser.parse_args()

    from boda.config import load_config
    from boda.services.build import record_build
    from boda.services.context import Context
    from boda.services.evidence import record_evidence
    from boda.services.promote import promote

    with Context(load_config(args.config), create_ledger=True) as ctx:  # builds, as `boda build` does
        # Builds one at a time (the ledger serialises writers anyway); the registry copies are mounts.
        for app in args.apps:
            record_build(ctx, app, commit=args.commit, image=args.image, by="bench")
        if args.dev:
            promote(ctx, args.apps, to=args.dev, commit=args.commit, by="bench")
            if args.evidence:
                for app in args.apps:
                    record_evidence(
                        ctx,
                        app,
                        env=args.dev,
                        kind=args.evidence,
                        result="pass",
                        commit=args.commit,
                        by="bench",
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
