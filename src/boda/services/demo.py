"""`boda demo`: the whole lifecycle on the embedded default, in a fresh folder.

Builds one small real image per commit for two apps, records them, gathers evidence, promotes
dev -> stg -> prd (a release of both apps at once), shows a gate refusing a promotion without
sign-off, rolls back a bad release, and leaves a folder the user can keep exploring with the CLI.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from boda.config import SAMPLE_CONFIG, load_config
from boda.errors import Refused, UsageError
from boda.services.build import record_build
from boda.services.context import Context
from boda.services.evidence import record_evidence
from boda.services.expiry.apply import apply
from boda.services.expiry.plan import plan
from boda.services.history import entry_json, stream_history
from boda.services.imagegen import make_image, make_index, push
from boda.services.promote import promote, rollback
from boda.services.status import status
from boda.services.verify import verify

MARKER = ".boda-demo"
# The demo expires right away (min_age 0s) with a policy that keeps only the newest image, so that
# what survives is exactly what boda protects.
DEMO_CONFIG = SAMPLE_CONFIG.replace('min_age = "1d"', 'min_age = "0s"').replace(
    '# policy = "lifecycle.json"',
    'policy = "lifecycle.json"\nblob_grace = "0s"                            # the demo frees layers at once',
)
RUTHLESS_POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "keep only the newest image",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"},
        }
    ]
}
APPS = ("shop/web", "shop/api")

Say = Callable[[str], None]
Show = Callable[[str, dict[str, Any]], None]


def _fresh(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()):
        if not (folder / MARKER).exists():
            raise UsageError(f"{folder} exists and is not a boda demo folder; choose another with --dir")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("made by boda demo\n")


def commit_sha(n: int) -> str:
    """A stable fake commit SHA for demo commit `n`."""
    return hashlib.sha1(f"boda-demo-commit-{n}".encode()).hexdigest()


def run_demo(folder: Path, *, images: int = 12, say: Say, show: Show, command: str = "boda") -> Path:
    """Run the story; return the config path. `command` is how the user runs boda, for the hints."""
    _fresh(folder)
    config_path = folder / "boda.toml"
    config_path.write_text(DEMO_CONFIG, encoding="utf-8")
    (folder / "lifecycle.json").write_text(json.dumps(RUTHLESS_POLICY, indent=2), encoding="utf-8")
    ctx = Context(load_config(config_path), create_ledger=True)
    try:
        _story(ctx, images, say, show)
    finally:
        ctx.close()
    say(f"\nEverything is in {folder}/ (registry: .boda/registry, ledger: .boda/ledger.db).")
    say(f"Try: cd {folder} && {command} status shop/web && {command} history shop/web --env prd")
    return config_path


def _story(ctx: Context, images: int, say: Say, show: Show) -> None:
    say(f"== 1. CI builds {images} commits of {' and '.join(APPS)}: one image per commit, pushed once")
    commits = [commit_sha(n) for n in range(images)]
    for n, commit in enumerate(commits):
        built = []
        for app in APPS:
            seed = f"{app}@{commit}"
            # Every third build of the web app is a multi-arch index, to show children travel along.
            multiarch = app == "shop/web" and n % 3 == 2
            image = make_index(seed) if multiarch else make_image(seed, layers=2)
            push(ctx.registry, app, image, tag=f"ci-{n}")
            recorded = record_build(ctx, app, commit=commit, image=f":ci-{n}", by="ci-bot")
            built.append(f"{app} {recorded.digest.short}{' (multi-arch)' if multiarch else ''}")
        say(f"  commit {commit[:8]}: {', '.join(built)}; both tagged {recorded.tag}")

    say("\n== 2. Every build goes to dev; tests run there")
    failing = min(4, images - 2)  # the commit whose tests fail
    for n, commit in enumerate(commits):
        promote(ctx, list(APPS), to="dev", commit=commit, by="ci-bot")
        result = "fail" if n == failing else "pass"
        for app in APPS:
            record_evidence(
                ctx,
                app,
                env="dev",
                commit=commit,
                kind="tests",
                result=result,
                url=f"https://ci.example.com/runs/{1000 + n}",
                by="ci-bot",
            )
    say(f"  {images} promotions to dev; tests failed for commit {commits[failing][:8]}")

    say("\n== 3. A commit whose tests failed in dev cannot reach stg")
    try:
        promote(ctx, ["shop/web"], to="stg", commit=commits[failing], by="alice")
    except Refused as exc:
        say(f"  refused (exit {exc.exit_code}): {exc.message}")

    releases = [commits[i] for i in range(1, images, max(1, images // 4)) if i != failing][:3]
    say(f"\n== 4. Releases {', '.join(c[:8] for c in releases)} go to stg, get signed off, and reach prd")
    for commit in releases:
        promote(ctx, list(APPS), to="stg", commit=commit, by="alice", reason="release train")
        for app in APPS:
            record_evidence(ctx, app, env="stg", commit=commit, kind="tests", result="pass", by="ci-bot")
        if commit != releases[-1]:
            for app in APPS:
                record_evidence(ctx, app, env="stg", commit=commit, kind="signoff", result="pass", by="carol")
            promote(ctx, list(APPS), to="prd", commit=commit, by="carol", reason=f"release {commit[:8]}")
            say(f"  {commit[:8]} is in production (both apps, one command)")

    say(f"\n== 5. {releases[-1][:8]} has no sign-off yet: the gate to prd holds")
    try:
        promote(ctx, list(APPS), to="prd", commit=releases[-1], by="dave")
    except Refused as exc:
        say(f"  refused (exit {exc.exit_code}): {exc.message}")

    say("\n== 6. Sign-off arrives, it ships, production breaks, and one command rolls it back")
    for app in APPS:
        record_evidence(ctx, app, env="stg", commit=releases[-1], kind="signoff", result="pass", by="carol")
    promote(ctx, list(APPS), to="prd", commit=releases[-1], by="carol", reason="release")
    back = rollback(ctx, "shop/web", env="prd", by="oncall", reason="error rate up after release")
    say(f"  shop/web in prd is back on {back.digest.short} (commit {str(back.commit)[:8]})")

    say("\n== 7. Where things stand")
    for app in APPS:
        show("status", status(ctx, app).to_json())
    say("\n== 8. Production history of shop/web (newest first)")
    prd = stream_history(ctx, "shop/web", "prd")
    show("history", {"app": prd.app, "entries": [entry_json(p) for p in prd.entries]})

    say("\n== 9. Expiry with a ruthless policy (keep only the newest image): the plan first")
    expiry = plan(ctx, "shop/web")
    show("plan", expiry.to_json())
    say("\n== 10. Apply it: everything deployed, every rollback target, every index child survives")
    applied = apply(ctx, "shop/web", yes=True, by="janitor")
    freed = sum(applied.collected.values())
    say(f"  deleted {len(applied.deleted)} images, skipped {len(applied.skipped)}; freed {freed} blobs")
    check = verify(ctx, "shop/web")
    agreement = "agree" if check.ok else "DISAGREE"
    say(f"  verify: registry and ledger {agreement} after expiry ({check.checked} checks)")
