"""The boto3 ECR client boda uses: adaptive retries, endpoints from the AWS default chain, and the
command's deadline (see `boda.deadline`): timeouts no longer than what remains when the client is
made, and a check before every attempt, retries included."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from boda import deadline

if TYPE_CHECKING:
    from mypy_boto3_ecr.client import ECRClient

#: Retries after the first attempt (botocore's `max_attempts`), in adaptive mode.
MAX_RETRIES = 10
#: botocore's own connect and read timeouts.
TIMEOUT_S = 60.0


def client_config(retries: int = MAX_RETRIES) -> Config:
    """The botocore config of boda's ECR clients: adaptive retries (10 attempts by default),
    timeouts within the command's deadline."""
    left = deadline.remaining()
    timeout = TIMEOUT_S if left is None else max(1.0, min(TIMEOUT_S, left))
    # A fresh dict each time: botocore rewrites the one it is given.
    return Config(
        retries={"mode": "adaptive", "max_attempts": retries},
        user_agent_extra="boda",
        connect_timeout=timeout,
        read_timeout=timeout,
    )


def _within_deadline(event_name: str = "", **_kwargs: Any) -> None:
    """botocore's before-send hook: no attempt starts after the command's deadline."""
    deadline.check(f"ECR {event_name.rsplit('.', 1)[-1]}")


def open_client(region: str, *, retries: int = MAX_RETRIES) -> ECRClient:
    """A client from the AWS default credential chain; it honours the standard endpoint
    overrides (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_ECR) by itself. Raises BotoCoreError."""
    client = boto3.session.Session().client("ecr", region_name=region, config=client_config(retries))
    client.meta.events.register("before-send.ecr", _within_deadline)
    return client
