"""The command's deadline reaches ECR: botocore's timeouts stay within it and no attempt (retries
included) starts after it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from boda import deadline
from boda.errors import EXIT_UNAVAILABLE
from boda.registry.ecr.client import TIMEOUT_S, client_config, open_client
from fixtures.moto import REGION

pytestmark = pytest.mark.ecr


@pytest.fixture(autouse=True)
def _no_deadline_left_behind() -> Any:
    yield
    deadline.clear()


def test_no_call_starts_after_the_deadline(ecr_env: str) -> None:
    deadline.start(2.0)  # room for the first call on a loaded machine
    client = open_client(REGION)
    client.describe_repositories()  # within the deadline
    time.sleep(max(0.0, deadline.remaining() or 0.0) + 0.1)
    with pytest.raises(deadline.DeadlineExceeded) as caught:
        client.describe_repositories()
    assert caught.value.exit_code == EXIT_UNAVAILABLE
    assert "DescribeRepositories" in caught.value.message


def test_timeouts_stay_within_what_remains() -> None:
    deadline.clear()
    assert client_config().read_timeout == TIMEOUT_S
    deadline.start(5.0)
    config = client_config()
    assert 1.0 <= config.read_timeout <= 5.0 and config.connect_timeout <= 5.0
