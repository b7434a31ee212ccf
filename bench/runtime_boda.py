"""Section 7, boda's side: read `ecs:CLUSTER` and `lambda:REGION/*` with boda's observers (the
Python API `boda runtime scan` uses) and print what was found and how long each read took.

    python bench/runtime_boda.py CLUSTER REGION
"""

from __future__ import annotations

import json
import sys
import time

from boda.locations import RuntimeLocation
from boda.runtime import observe


def main() -> int:
    cluster, region = sys.argv[1], sys.argv[2]
    out = {}
    for text in (f"ecs:{cluster}", f"lambda:{region}/*"):
        started = time.perf_counter()
        seen = observe(RuntimeLocation.parse(text))
        out[text] = {
            "seconds": time.perf_counter() - started,
            "requests": seen.requests,
            "records": len(seen.images),
            "tasks": sum(i.tasks or 0 for i in seen.images if i.source == "task"),
            "digests": len({i.digest for i in seen.images if i.digest}),
        }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
