"""The boto3 ECR client boda uses: adaptive retries, endpoints from the AWS default chain."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_ecr.client import ECRClient

#: Retries after the first attempt (botocore's `max_attempts`), in adaptive mode.
MAX_RETRIES = 10


def client_config(retries: int = MAX_RETRIES) -> Config:
    """The botocore config of boda's ECR clients: adaptive retries, 10 attempts by default."""
    # A fresh dict each time: botocore rewrites the one it is given.
    return Config(retries={"mode": "adaptive", "max_attempts": retries}, user_agent_extra="boda")


def open_client(region: str, *, retries: int = MAX_RETRIES) -> ECRClient:
    """A client from the AWS default credential chain; it honours the standard endpoint
    overrides (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_ECR) by itself. Raises BotoCoreError."""
    return boto3.session.Session().client("ecr", region_name=region, config=client_config(retries))
