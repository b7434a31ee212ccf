"""A deadline per command: a registry that trickles its answers, or keeps asking to retry later,
cannot hold a command past it. Exceeding it is one line and exit 6."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from boda import deadline
from boda.registry import open_registry
from boda.services.imagegen import make_image, push
from fixtures.config import boda_toml
from fixtures.faultproxy import FaultProxy
from fixtures.registry import RegistryProcess

pytestmark = pytest.mark.registry


@pytest.fixture(autouse=True)
def _no_deadline_left_behind() -> Any:
    yield
    deadline.clear()


def pushed(fault_proxy: FaultProxy, repo: str) -> str:
    registry = open_registry(fault_proxy.url)
    try:
        return str(push(registry, repo, make_image(repo, layers=1, layer_size=300_000), tag="v1"))
    finally:
        registry.close()


def one_line_exit_6(run: Any) -> None:
    assert run.code == 6, run.err
    assert run.err.count("\n") == 1, run.err
    assert "deadline" in run.err


def test_a_trickled_answer_ends_at_the_deadline(
    fault_proxy: FaultProxy, boda: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One byte every 5 s: a 30 s read timeout never trips, the deadline does."""
    pushed(fault_proxy, "deadline/tags")
    fault_proxy.add("trickle", "GET", "/tags/list", seconds=5.0)
    monkeypatch.setenv("BODA_DEADLINE", "2s")
    started = time.monotonic()
    run = boda("tags", f"{fault_proxy.host}/deadline/tags")
    elapsed = time.monotonic() - started
    one_line_exit_6(run)
    assert "BODA_DEADLINE" in run.err and "/tags/list" in run.err
    assert elapsed < 5.0, elapsed


def test_a_streamed_blob_ends_at_the_deadline_too(
    fault_proxy: FaultProxy, registry: RegistryProcess, boda: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blob is read in chunks of a MiB; the deadline is checked on every network read."""
    pushed(fault_proxy, "deadline/blob")
    fault_proxy.add("trickle", "GET", "/blobs/sha256:", seconds=0.02, times=None)
    monkeypatch.setenv("BODA_DEADLINE", "3s")
    started = time.monotonic()
    # from the proxy to the registry behind it: two registries to boda, so the blobs stream
    run = boda("copy", f"{fault_proxy.host}/deadline/blob:v1", f"{registry.host}/deadline/copied:v1")
    elapsed = time.monotonic() - started
    one_line_exit_6(run)
    assert elapsed < 6.0, elapsed


def test_retry_after_beyond_the_deadline_fails_now(
    fault_proxy: FaultProxy, boda: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault_proxy.add("respond", "GET", "/tags/list", status=503, headers={"Retry-After": "30"}, times=None)
    monkeypatch.setenv("BODA_DEADLINE", "5s")
    started = time.monotonic()
    run = boda("tags", f"{fault_proxy.host}/deadline/retry")
    one_line_exit_6(run)
    assert "503" in run.err and "retry" in run.err
    assert time.monotonic() - started < 4.0


def test_the_config_sets_the_deadline(fault_proxy: FaultProxy, boda: Any, tmp_path: Path) -> None:
    """`[limits] deadline` in boda.toml, for every command that reads the config."""
    pushed(fault_proxy, "deadline/app")
    fault_proxy.add("trickle", "GET", "/tags/list", seconds=5.0)
    config = tmp_path / "boda.toml"
    config.write_text(
        boda_toml(
            registry=fault_proxy.url,
            ledger=f"sqlite:///{tmp_path}/ledger.db",
            extra='\n[limits]\ndeadline = "2s"\n',
        )
    )
    run = boda("--config", str(config), "build", "deadline/app", "--commit", "a" * 40, "--image", ":v1")
    assert run.code == 0, run.err  # HEAD, GET and PUT answer promptly
    started = time.monotonic()
    policy = tmp_path / "policy.json"
    policy.write_text(
        '{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",'
        ' "countNumber": 1}, "action": {"type": "expire"}}]}'
    )
    run = boda("--config", str(config), "gc", "plan", "deadline/app", "--policy", str(policy))
    one_line_exit_6(run)
    assert "[limits] deadline" in run.err
    assert time.monotonic() - started < 5.0


def test_off_means_no_deadline_and_bad_values_are_usage_errors(
    fault_proxy: FaultProxy, boda: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pushed(fault_proxy, "deadline/off")
    fault_proxy.add("trickle", "GET", "/tags/list", seconds=0.001, times=None)
    monkeypatch.setenv("BODA_DEADLINE", "off")
    assert boda("tags", f"{fault_proxy.host}/deadline/off").code == 0
    monkeypatch.setenv("BODA_DEADLINE", "soon")
    run = boda("tags", f"{fault_proxy.host}/deadline/off")
    assert run.code == 2 and run.err.count("\n") == 1 and "BODA_DEADLINE" in run.err
    monkeypatch.delenv("BODA_DEADLINE")
    config = tmp_path / "boda.toml"
    config.write_text(
        boda_toml(
            registry=fault_proxy.url,
            ledger=f"sqlite:///{tmp_path}/l.db",
            extra='\n[limits]\ndeadline = "0s"\n',
        )
    )
    run = boda("--config", str(config), "status", "x/y")
    assert run.code == 2 and "limits.deadline" in run.err
