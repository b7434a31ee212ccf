"""Commands that need no registry (status, history, whereis, evidence, policy eval) import no HTTP
client and no AWS SDK: each runs as a whole process, which then lists the modules it loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from boda.config import load_config
from boda.services.build import record_build
from boda.services.context import Context
from boda.services.imagegen import make_image, push
from boda.services.promote import promote
from fixtures.config import boda_toml

APP = "quiet/app"
COMMIT = "c0ffee" + "0" * 34
NETWORK = {
    "httpx",
    "httpcore",
    "h11",
    "h2",
    "anyio",
    "boto3",
    "botocore",
    "urllib3",
    "requests",
    "ssl",
    "certifi",
}
PROBE = """
import json, sys
from boda.cli import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    json.dump(sorted(sys.modules), f)
sys.exit(code)
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("offline")
    config = root / "boda.toml"
    config.write_text(boda_toml(registry=f"oci-layout:{root}/registry", ledger=f"sqlite:///{root}/ledger.db"))
    with Context(load_config(config), create_ledger=True) as ctx:  # as `boda build` does
        push(ctx.registry, APP, make_image("offline", layers=1, layer_size=64), tag="ci-1")
        record_build(ctx, APP, commit=COMMIT, image=":ci-1", by="ci")
        promote(ctx, [APP], to="dev", commit=COMMIT, by="ci")
    (root / "policy.json").write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "selection": {
                            "tagStatus": "any",
                            "countType": "imageCountMoreThan",
                            "countNumber": 1,
                        },
                        "action": {"type": "expire"},
                    }
                ]
            }
        )
    )
    (root / "images.json").write_text(
        json.dumps(
            {
                "imageDetails": [
                    {
                        "imageDigest": f"sha256:{n:064x}",
                        "imageTags": [f"v{n}"],
                        "imagePushedAt": 1700000000 + n,
                    }
                    for n in range(3)
                ]
            }
        )
    )
    return root


@pytest.mark.parametrize(
    "args",
    [
        ["status", APP],
        ["history", APP, "--json"],
        ["whereis", "--commit", COMMIT[:10]],
        ["evidence", APP, "--env", "dev", "--commit", COMMIT[:10], "--kind", "tests", "--result", "pass"],
        ["policy", "eval", "--policy", "{root}/policy.json", "--images", "{root}/images.json", "--json"],
    ],
    ids=["status", "history", "whereis", "evidence", "policy-eval"],
)
def test_an_offline_command_imports_no_network_client(project: Path, args: list[str]) -> None:
    out = project / "modules.json"
    argv = [a.replace("{root}", str(project)) for a in args]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), "--config", str(project / "boda.toml"), *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    loaded = {name.split(".")[0] for name in json.loads(out.read_text())}
    assert not loaded & NETWORK, sorted(loaded & NETWORK)


def test_the_probe_sees_a_network_client_when_one_is_loaded(project: Path) -> None:
    """The same probe on a registry command (a registry that refuses): httpx is there."""
    out = project / "modules-digest.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), "digest", "127.0.0.1:1/x/y:z"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 6, done.stderr
    loaded = {name.split(".")[0] for name in json.loads(out.read_text())}
    assert {"httpx", "httpcore"} <= loaded
    assert not {"rich", "pygments"} & loaded  # httpx's own CLI is never imported
