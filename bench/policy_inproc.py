"""In-process split of `boda policy eval`: parsing vs evaluation vs rendering, one document.

    python bench/policy_inproc.py IMAGES.json POLICY.json NOW REPEATS

Prints JSON: per-phase lists of seconds (read, orjson.loads, json.loads, parse_images, evaluate,
preview, json.dumps of the result) and this process's peak RSS. Each phase runs REPEATS times
(stdlib json.loads once: it is the floor the issue names, not boda's path).
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any


def main() -> int:
    images_path, policy_path, now_text, repeats_text = sys.argv[1:5]
    repeats = int(repeats_text)

    from boda.policy import evaluate, parse_images, parse_policy
    from boda.policy.preview import preview
    from boda.services.policy_eval import parse_now

    now = parse_now(now_text)
    policy = parse_policy(Path(policy_path).read_text())
    out: dict[str, Any] = {k: [] for k in ("read", "orjson", "parse", "evaluate", "preview", "dumps")}

    def timed(key: str, fn: Any) -> Any:
        gc.collect()
        started = time.perf_counter()
        result = fn()
        out[key].append(time.perf_counter() - started)
        return result

    data = b""
    images: list[Any] = []
    decisions: list[Any] = []
    result: dict[str, Any] = {}
    for _ in range(repeats):
        data = timed("read", Path(images_path).read_bytes)
        try:
            import orjson

            timed("orjson", partial(orjson.loads, data))
        except ImportError:
            pass
        images = []
        images = timed("parse", partial(parse_images, data))
        decisions = timed("evaluate", partial(evaluate, policy, images, now))
        result = timed("preview", partial(preview, policy, images, now, decisions))
        timed("dumps", partial(json.dumps, result, indent=2))
    gc.collect()
    started = time.perf_counter()
    json.loads(data)
    out["stdlib_json"] = [time.perf_counter() - started]
    out["images"] = len(images)
    out["decisions"] = len(decisions)
    out["expiring"] = result.get("summary", {}).get("expiringImageTotalCount")
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
