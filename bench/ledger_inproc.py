"""In-process latency of `status` and `history` (the service calls behind the commands).

    python bench/ledger_inproc.py CONFIG APP REPEATS

Prints JSON: seconds per call of status(), history(), and of the ledger reads they could use
(current_all, previous_digests, promotions(limit=50)), after one warm-up call each.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any


def main() -> int:
    config_path, app, repeats_text = sys.argv[1:4]
    repeats = int(repeats_text)

    from boda.config import load_config
    from boda.services.context import Context
    from boda.services.history import stream_history
    from boda.services.status import status

    def history(ctx: Any, app: str, env: str | None = None) -> list[Any]:
        return list(stream_history(ctx, app, env).entries)

    out: dict[str, Any] = {}
    with Context(load_config(config_path)) as ctx:
        ledger = ctx.ledger
        envs = [e.name for e in ctx.config.environments]
        cases: dict[str, Callable[[], Any]] = {
            "status": lambda: status(ctx, app),
            "status (ledger only)": lambda: status(ctx, app, live=False),
            "history": lambda: history(ctx, app),
            "history --env prd": lambda: history(ctx, app, "prd"),
            "ledger.current_all": lambda: ledger.current_all(app),
            "ledger.previous_digests x envs (depth 3)": lambda: [
                ledger.previous_digests(app, e, 3) for e in envs
            ],
            "ledger.promotions(limit=50)": lambda: ledger.promotions(app, None, 50),
        }
        for name, fn in cases.items():
            fn()  # warm-up: connection, statement caches, pages
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                fn()
                times.append(time.perf_counter() - started)
            out[name] = times
        out["history_entries"] = len(history(ctx, app))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
