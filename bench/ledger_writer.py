"""One of N concurrent writers: COUNT promotions through the ledger API's `promotion_lock`.

    python bench/ledger_writer.py URL APP ENV COUNT START_AT

Connects first, then waits until the wall clock reaches START_AT (so that all writers start
together), then promotes a fresh digest COUNT times, each compare-and-set on the current one.
Prints {"start": t0, "end": t1, "count": n, "conflicts": c} (time.time() seconds).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time


def main() -> int:
    url, app, env, count_text, start_text = sys.argv[1:6]
    count, start_at = int(count_text), float(start_text)

    from boda.errors import Conflict
    from boda.ledger import open_ledger
    from boda.types import Digest

    ledger = open_ledger(url)
    while time.time() < start_at:
        time.sleep(0.001)
    t0 = time.time()
    done = conflicts = 0
    pid = os.getpid()
    while done < count:
        digest = Digest.parse("sha256:" + hashlib.sha256(f"{pid}/{done}/{t0}".encode()).hexdigest())
        try:
            with ledger.promotion_lock(app, env) as tx:
                current = tx.current()
                tx.record_promotion(
                    digest=digest,
                    commit=None,
                    reference=f"registry.example.com/{app}@{digest}",
                    by=f"writer-{pid}",
                    kind="promote",
                    reason=None,
                    expected_previous=current.digest if current else None,
                )
            done += 1
        except Conflict:
            conflicts += 1
    t1 = time.time()
    ledger.close()
    print(json.dumps({"start": t0, "end": t1, "count": done, "conflicts": conflicts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
