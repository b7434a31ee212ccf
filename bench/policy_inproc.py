"""In-process split of `boda policy eval`: parsing vs evaluation vs rendering, one document.

    python bench/policy_inproc.py IMAGES.json POLICY.json NOW REPEATS

Prints JSON: per-phase lists of seconds and this process's peak RSS. boda's phases run REPEATS times:
read, parse_images (msgspec, typed, checked), evaluate (columnar), preview (evaluation and result
rows), encode (compact JSON, msgspec) and pretty (indenting it). The ways to compare them with run
once: stdlib json.loads and orjson.loads of the same bytes (untyped dicts, nothing checked), the
reference evaluator (up to 100k images) and json.dumps(indent=2) of the preview as plain dicts (the
way boda rendered it before, up to 300k images).
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

    import msgspec

    from boda.policy import evaluate_reference, parse_images, parse_policy
    from boda.policy.columnar import evaluate_columns
    from boda.policy.preview import preview
    from boda.services.policy_eval import parse_now

    now = parse_now(now_text)
    policy = parse_policy(Path(policy_path).read_text())
    out: dict[str, Any] = {k: [] for k in ("read", "parse", "evaluate", "preview", "encode", "pretty")}

    def timed(key: str, fn: Any) -> Any:
        gc.collect()
        started = time.perf_counter()
        result = fn()
        out.setdefault(key, []).append(time.perf_counter() - started)
        return result

    data = b""
    images: list[Any] = []
    result: Any = None
    encoded = b""
    for _ in range(repeats):
        data = timed("read", Path(images_path).read_bytes)
        images = []
        images = timed("parse", partial(parse_images, data))
        timed("evaluate", partial(evaluate_columns, policy, images, now))
        result = None
        result = timed("preview", partial(preview, policy, images, now))
        encoded = timed("encode", partial(msgspec.json.encode, result))
        timed("pretty", partial(msgspec.json.format, encoded, indent=2))
    try:
        import orjson

        timed("orjson", partial(orjson.loads, data))
    except ImportError:
        pass
    timed("stdlib_json", partial(json.loads, data))
    if len(images) <= 100_000:
        timed("reference", partial(evaluate_reference, policy, images, now))
    if len(images) <= 300_000:
        plain = msgspec.to_builtins(result)
        timed("dumps", partial(json.dumps, plain, indent=2))
        del plain
    out["images"] = len(images)
    out["expiring"] = result.summary.expiring_image_total_count
    out["output_bytes"] = len(encoded)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
