"""Fixtures of the native retention tests: moto with ECR's tag-move semantics (MOTO-TAG-MOVE closed,
see ecr_semantics_server.py), started once per session and stopped by pid, and an AWS environment
pointing at it."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.moto import REGION
from fixtures.processes import free_port, log_tail, spawn_logged, stop_process

_SERVER = Path(__file__).with_name("ecr_semantics_server.py")


@pytest.fixture(scope="session")
def ecr_semantics_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of moto with ECR's tag-move semantics, for this session (xdist worker)."""
    log = tmp_path_factory.mktemp("moto-ecr") / "server.log"
    last = ""
    for _ in range(3):  # another worker may take the free port between probe and bind
        port = free_port()
        process = spawn_logged([sys.executable, str(_SERVER), "-H", "127.0.0.1", "-p", str(port)], log)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                httpx.post(f"{url}/moto-api/reset", timeout=1.0).raise_for_status()
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            yield url
            stop_process(process)
            return
        last = log_tail(log)
        stop_process(process)
    pytest.fail(f"cannot start the ECR-semantics moto server: {last}", pytrace=False)


def point_aws_at(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fresh state, and the AWS default chain aimed at `endpoint` (as `ecr_env` does for moto)."""
    httpx.post(f"{endpoint}/moto-api/reset", timeout=10.0).raise_for_status()
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))


@pytest.fixture
def ecr_like_client(ecr_semantics_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """A plain boto3 ECR client on the ECR-semantics server, the environment pointing there too."""
    import boto3
    from botocore.config import Config

    point_aws_at(ecr_semantics_endpoint, monkeypatch, tmp_path)
    return boto3.client("ecr", region_name=REGION, config=Config(retries={"max_attempts": 1}))
