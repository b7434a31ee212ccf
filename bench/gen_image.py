"""Write a synthetic image (boda.services.imagegen.make_image) as an OCI layout that skopeo can push.

    python bench/gen_image.py OUT_DIR --layers 8 --layer-mib 16 --seed bench --tag v1

Prints {"digest": ..., "bytes": ...} on stdout. Deterministic for its arguments; skips the work
when OUT_DIR already holds the same image.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--layer-mib", type=float, default=16)
    parser.add_argument("--seed", default="bench")
    parser.add_argument("--tag", default="v1")
    args = parser.parse_args()
    meta_path = args.out / "bench-image.json"
    key = {"layers": args.layers, "layer_mib": args.layer_mib, "seed": args.seed, "tag": args.tag}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("key") == key:
            print(json.dumps(meta))
            return 0

    from boda.services.imagegen import make_image, write_oci_layout

    image = make_image(args.seed, layers=args.layers, layer_size=int(args.layer_mib * (1 << 20)))
    args.out.mkdir(parents=True, exist_ok=True)
    write_oci_layout(args.out, image, args.tag)
    meta = {
        "key": key,
        "digest": str(image.digest),
        "bytes": sum(len(b) for b in image.blobs.values()),
        "blobs": len(image.blobs),
        "config_bytes": image.manifest.config.size if image.manifest.config else 0,
    }
    meta_path.write_text(json.dumps(meta))
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
