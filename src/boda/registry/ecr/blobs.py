"""Blobs of an ECR registry, through its `/v2/` registry API (ECR's own API moves no layer bytes
boda could stream): the `oci` backend at the authorization token's `proxyEndpoint`, logged in with
the token (`AWS:<password>`, renewed shortly before its 12 hours are up)."""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from boda.errors import RegistryError
from boda.registry._credentials import Credentials
from boda.registry.base import RegistryStats
from boda.registry.ecr.errors import EcrErrors

if TYPE_CHECKING:
    from mypy_boto3_ecr.client import ECRClient

    from boda.registry.oci import OciRegistry

log = logging.getLogger(__name__)

# Renew the authorization token (valid 12 hours) when less than this is left.
_TOKEN_MARGIN = timedelta(minutes=5)


class BlobProxy:
    """The `/v2/` API of one ECR registry, opened on first use, and the account's mount setting."""

    def __init__(self, client: ECRClient, account: str, errors: EcrErrors, stats: RegistryStats) -> None:
        self._client = client
        self._account = account
        self._errors = errors
        self._stats = stats
        self._lock = threading.Lock()
        self._oci: OciRegistry | None = None
        self._token: tuple[Credentials, datetime] | None = None
        self._blob_mounting: bool | None = None

    def credentials(self) -> Credentials:
        """`AWS:<password>` from get_authorization_token, renewed shortly before it expires."""
        with self._lock:
            if self._token is not None and self._token[1] - datetime.now(UTC) > _TOKEN_MARGIN:
                return self._token[0]
        credentials, expires, _ = self._authorization()
        with self._lock:
            self._token = (credentials, expires)
        return credentials

    def _authorization(self) -> tuple[Credentials, datetime, str]:
        with self._errors.api("GetAuthorizationToken", ""):
            response = self._client.get_authorization_token(registryIds=[self._account])
        data = (response.get("authorizationData") or [{}])[0]
        try:
            decoded = base64.b64decode(data.get("authorizationToken", ""), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, sep, password = decoded.partition(":")
        if not sep or not password:
            where = self._errors.where("GetAuthorizationToken", "")
            raise RegistryError(f"{where}: the token is not user:password")
        expires = data.get("expiresAt") or datetime.now(UTC)
        endpoint = data.get("proxyEndpoint") or f"https://{self._errors.name}"
        return Credentials(username=username, password=password), expires, endpoint

    def api(self) -> OciRegistry:
        """The `/v2/` API of this registry at the token's `proxyEndpoint`, authenticated with it."""
        with self._lock:
            if self._oci is not None:
                return self._oci
        credentials, expires, endpoint = self._authorization()
        parts = urlsplit(endpoint)
        from boda.registry.oci import OciRegistry

        with self._lock:
            if self._oci is None:
                self._token = (credentials, expires)
                self._oci = OciRegistry(
                    parts.netloc or self._errors.name,
                    scheme=parts.scheme or "https",
                    credentials=self.credentials,
                    stats=self._stats,
                )
            return self._oci

    def mounting_enabled(self) -> bool:
        """Whether the account allows cross-repository mounts (BLOB_MOUNTING), asked once.

        When ECR cannot say (an old endpoint, missing permission), boda streams: always correct.
        """
        with self._lock:
            if self._blob_mounting is not None:
                return self._blob_mounting
        try:
            with self._errors.api("GetAccountSetting", ""):
                response = self._client.get_account_setting(name="BLOB_MOUNTING")
            enabled = str(response.get("value", "")).upper() == "ENABLED"
        except RegistryError as exc:
            log.warning(
                "cannot read BLOB_MOUNTING of %s (%s); blobs will be copied", self._errors.name, exc.message
            )
            enabled = False
        with self._lock:
            self._blob_mounting = enabled
        return enabled

    def close(self) -> None:
        with self._lock:
            oci, self._oci = self._oci, None
        if oci is not None:
            oci.close()
