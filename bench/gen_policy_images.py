"""Synthetic `aws ecr describe-images` documents and a 5-rule lifecycle policy for section 4.

    python bench/gen_policy_images.py OUT_DIR 10000 100000 1000000

Writes OUT_DIR/images-<N>.json (skipped when present) and OUT_DIR/policy.json. Images are spread
over the year before NOW; tags are what CI pipelines write: commit SHAs (8 hex digits), pr-<n>,
feat-<name>-<n>, prd-<date>-<n> releases, environment tags on the newest images, and ~25%
untagged. Deterministic (seeded) so that every run evaluates the same documents.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

NOW = datetime(2026, 11, 1, tzinfo=UTC)
YEAR_S = 365 * 24 * 3600
WORDS = ["login", "search", "cart", "billing", "cache", "api", "ui", "auth", "export", "report"]

POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "keep the last 100 production releases",
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": ["prd-"],
                "countType": "imageCountMoreThan",
                "countNumber": 100,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": "archive feature branches nobody pulled for 30 days",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": ["feat-*"],
                "countType": "sinceImagePulled",
                "countUnit": "days",
                "countNumber": 30,
            },
            "action": {"type": "transition", "targetStorageClass": "archive"},
        },
        {
            "rulePriority": 3,
            "description": "pull-request builds: 14 days",
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": ["pr-"],
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 14,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 4,
            "description": "untagged: 7 days",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 7,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 5,
            "description": "everything else: keep the newest 5000",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5000},
            "action": {"type": "expire"},
        },
    ]
}


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="microseconds")


def write_images(path: Path, count: int, seed: int = 7) -> None:
    """Stream a describe-images document of `count` images to `path`."""
    rng = random.Random(seed * 1_000_003 + count)
    pushed = sorted(rng.random() * YEAR_S for _ in range(count))  # ascending age order → newest last
    order = list(range(count))
    rng.shuffle(order)  # ECR lists images in no particular order
    env_tagged = {count - 1: ["prd", "stg", "dev"], count - 2: ["stg"], count - 3: ["dev"]}
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as out:
        out.write('{"imageDetails": [\n')
        for n, idx in enumerate(order):
            when = NOW - timedelta(seconds=YEAR_S - pushed[idx])
            sha = f"{rng.getrandbits(32):08x}"
            r = rng.random()
            tags: list[str]
            if r < 0.25:
                tags = []
            elif r < 0.50:
                tags = [f"pr-{rng.randrange(1, 20000)}", sha]
            elif r < 0.65:
                tags = [f"feat-{rng.choice(WORDS)}-{rng.randrange(1, 5000)}", sha]
            elif r < 0.95:
                tags = [sha]
            else:
                tags = [f"prd-{when:%Y%m%d}-{idx}", sha]
            tags += env_tagged.get(idx, [])
            detail: dict[str, object] = {
                "registryId": "123456789012",
                "repositoryName": "foo/bar",
                "imageDigest": f"sha256:{rng.getrandbits(256):064x}",
                "imageSizeInBytes": rng.randrange(20_000_000, 400_000_000),
                "imagePushedAt": _iso(when),
                "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactMediaType": "application/vnd.oci.image.config.v1+json",
            }
            if tags:
                detail["imageTags"] = tags
            if rng.random() < 0.6:
                detail["lastRecordedPullTime"] = _iso(when + timedelta(days=rng.random() * 60))
            out.write(("" if n == 0 else ",\n") + json.dumps(detail, separators=(",", ":")))
        out.write("\n]}\n")
    tmp.replace(path)


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "policy.json").write_text(json.dumps(POLICY, indent=2))
    for count in map(int, sys.argv[2:]):
        path = out / f"images-{count}.json"
        if not path.exists():
            write_images(path, count)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
