"""boda's inventory of one repository through its Python API: `image_list` (tags resolved to
digests with concurrent HEADs), as a whole process.

    python bench/inventory_boda.py HOST REPO

Prints {"images": n, "tags": t, "seconds": s} (seconds inside the call).
"""

from __future__ import annotations

import json
import sys
import time


def main() -> int:
    host, repo = sys.argv[1:3]
    from boda.registry import open_registry

    registry = open_registry(host)
    started = time.perf_counter()
    images = registry.image_list(repo)
    elapsed = time.perf_counter() - started
    registry.close()
    print(json.dumps({"images": len(images), "tags": sum(len(i.tags) for i in images), "seconds": elapsed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
