"""Where images and history live: registry and ledger locations, parsed once.

A location is a value: the config holds one of each, the backends consume them, and every
message shows its `display` form, which never carries a secret.

Registry URLs:
    oci-layout:PATH                              an OCI image layout on disk (the embedded default)
    http://HOST[:PORT], https://HOST[:PORT]      an OCI distribution registry
    HOST[:PORT]                                  the same, the way image references name registries:
                                                 plain HTTP for loopback (and BODA_INSECURE_REGISTRIES)
    ecr://ACCOUNT.dkr.ecr.REGION.amazonaws.com   Amazon ECR through its API (bare ECR hosts too)

Ledger URLs:
    sqlite:///RELATIVE/PATH.db, sqlite:////ABSOLUTE/PATH.db, sqlite:///:memory:
    postgresql://USER@HOST:PORT/DATABASE         (or postgres://; a password is redacted everywhere)

Runtime locations (`runtimes = [...]` of an environment: where its images run):
    ecs:CLUSTER                  every service and task of an ECS cluster (CLUSTER: a name, or the
                                 cluster's ARN, which also names the region)
    ecs:CLUSTER/SERVICE          one ECS service and its tasks
    lambda:REGION/FUNCTION       one Lambda function (FUNCTION may be a glob such as `shop-*`)
    lambda:REGION/*              every Lambda function of the region
    k8s:CONTEXT/NAMESPACE        a Kubernetes namespace, through a kubeconfig context (the context may
                                 contain '/', as EKS's ARNs do; NAMESPACE `*` means every namespace)
    file:PATH                    a file of image references, or `kubectl get pods -o json` output
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from boda.errors import UsageError
from boda.types import LAYOUT_SCHEME

ECR_SCHEME = "ecr://"
ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
_HOST = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[a-fA-F0-9:.]+\])(?::[0-9]{1,5})?\Z"
)
_CREDENTIALS_HINT = (
    "keep credentials in Docker's config.json (docker login HOST, credential helpers) or, for ECR,"
    " the AWS credential chain; never in the URL"
)
SQLITE_PREFIX = "sqlite:///"
SQLITE_MEMORY = ":memory:"

RegistryKind = Literal["layout", "oci", "ecr"]
LedgerKind = Literal["sqlite", "postgres"]
RuntimeKind = Literal["ecs", "lambda", "k8s", "file"]
RUNTIME_KINDS: tuple[RuntimeKind, ...] = ("ecs", "lambda", "k8s", "file")
_ECS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}\Z")
_ECS_CLUSTER_ARN = re.compile(
    r"^arn:aws[a-z-]*:ecs:([a-z]{2}(?:-[a-z]+)+-\d+):(\d{12}):cluster/([A-Za-z0-9_-]{1,255})\Z"
)
_AWS_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+\Z")
_LAMBDA_NAME = re.compile(r"^[A-Za-z0-9_*?-]{1,64}\Z")
_K8S_NAMESPACE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_RUNTIME_USAGE = (
    "expected ecs:CLUSTER, ecs:CLUSTER/SERVICE, lambda:REGION/FUNCTION, lambda:REGION/*,"
    " k8s:CONTEXT/NAMESPACE or file:PATH"
)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, with or without a port."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def insecure_hosts() -> frozenset[str]:
    """Hosts the user allows plain HTTP to (BODA_INSECURE_REGISTRIES, comma-separated)."""
    return frozenset(
        h.strip() for h in os.environ.get("BODA_INSECURE_REGISTRIES", "").split(",") if h.strip()
    )


@dataclass(frozen=True)
class RegistryLocation:
    """A registry: an OCI layout folder, an OCI distribution host, or an ECR account and region."""

    kind: RegistryKind
    #: `host[:port]` of an oci or ecr registry; "" for a layout.
    host: str = ""
    #: "http" or "https" for an oci registry; "" otherwise.
    scheme: str = ""
    #: The layout's root folder (absolute once parsed with a base folder).
    path: Path | None = None

    @classmethod
    def parse(cls, text: str, *, base_dir: Path | None = None, insecure: bool = False) -> RegistryLocation:
        """Parse a registry URL or a reference's registry part (UsageError, exit 2, when malformed).

        `base_dir` anchors a relative layout path (the config file's folder). `insecure` allows
        plain HTTP to a non-loopback host, as listing it in BODA_INSECURE_REGISTRIES does.
        """
        if not isinstance(text, str) or not text or text != text.strip():
            raise UsageError(f"registry URL {text!r}: empty or surrounded by spaces")
        if text.startswith(LAYOUT_SCHEME):
            folder = text[len(LAYOUT_SCHEME) :]
            if not folder:
                raise UsageError(
                    f"registry URL {text!r}: oci-layout: needs a folder, e.g. oci-layout:.boda/registry"
                )
            path = Path(folder)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            return cls("layout", path=path.resolve())
        scheme = ""
        host = text
        if "://" in text:
            scheme, host = text.split("://", 1)
            if scheme not in ("http", "https", "ecr"):
                raise UsageError(
                    f"registry URL {text!r}: the scheme must be oci-layout:, http://, https:// or ecr://"
                )
        host = host[:-1] if host.endswith("/") else host
        if "@" in host:
            raise UsageError(
                f"registry URL {_without_userinfo(text)!r} carries credentials; refusing it",
                hint=_CREDENTIALS_HINT,
            )
        if not host or "/" in host or "?" in host or "#" in host:
            raise UsageError(f"registry URL {text!r}: expected HOST[:PORT] without a path")
        if not _HOST.match(host):
            raise UsageError(f"registry URL {text!r}: {host!r} is not a host name or address")
        if scheme == "ecr" or (not scheme and ECR_HOST.match(host)):
            if not ECR_HOST.match(host):
                raise UsageError(
                    f"registry URL {text!r}: expected ecr://ACCOUNT.dkr.ecr.REGION.amazonaws.com"
                )
            return cls("ecr", host=host)
        plain_ok = insecure or is_loopback(host) or host in insecure_hosts()
        if scheme == "http" and not plain_ok:
            raise UsageError(
                f"registry URL {text!r}: plain http is only used for loopback hosts",
                hint="pass --insecure or list the host in BODA_INSECURE_REGISTRIES if you mean it",
            )
        return cls("oci", host=host, scheme=scheme or ("http" if plain_ok else "https"))

    @property
    def name(self) -> str:
        """The registry's identity in references: `host[:port]`, or `oci-layout:/abs/root`."""
        if self.kind == "layout":
            return f"{LAYOUT_SCHEME}{self.path}"
        return self.host

    @property
    def ecr_account(self) -> str:
        """The AWS account of an ECR registry."""
        match = ECR_HOST.match(self.host)
        return match.group(1) if match else ""

    @property
    def ecr_region(self) -> str:
        """The AWS region of an ECR registry."""
        match = ECR_HOST.match(self.host)
        return match.group(2) if match else ""

    def reference_prefix(self, repo: str) -> str:
        """`host/repo`, or `oci-layout:/abs/root:repo`: what a pull reference starts with."""
        return f"{self.name}:{repo}" if self.kind == "layout" else f"{self.host}/{repo}"

    def __str__(self) -> str:
        if self.kind == "layout":
            return self.name
        if self.kind == "ecr":
            return f"{ECR_SCHEME}{self.host}"
        return f"{self.scheme}://{self.host}"


def _without_userinfo(text: str) -> str:
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    host = rest.split("/", 1)[0].rpartition("@")[2]
    return f"{scheme}{sep}***@{host}"


@dataclass(frozen=True)
class LedgerLocation:
    """A ledger database: a SQLite file (or memory) or a PostgreSQL database."""

    kind: LedgerKind
    #: The SQLite file (None for an in-memory ledger).
    path: Path | None = None
    #: The PostgreSQL connection URL as given, password included: only for the driver.
    url: str = field(default="", repr=False)
    #: The URL for people and messages, with any password replaced by `***`.
    display: str = ""

    @classmethod
    def parse(cls, text: str, *, base_dir: Path | None = None) -> LedgerLocation:
        """Parse a ledger URL (UsageError, exit 2, when malformed; the message hides any password)."""
        shown = redact_url(text) if isinstance(text, str) else repr(text)
        usage = (
            "expected sqlite:///RELATIVE/PATH.db, sqlite:////ABSOLUTE/PATH.db, sqlite:///:memory: or"
            " postgresql://USER@HOST:PORT/DATABASE"
        )
        if not isinstance(text, str) or not text or text != text.strip():
            raise UsageError(f"invalid ledger URL {shown!r}: {usage}")
        if text.startswith(SQLITE_PREFIX):
            rest = text[len(SQLITE_PREFIX) :]
            if not rest or "?" in rest or "#" in rest:
                raise UsageError(f"invalid ledger URL {shown!r}: {usage}")
            if rest == SQLITE_MEMORY:
                return cls("sqlite", path=None, display=text)
            path = Path(rest)
            if not path.is_absolute():
                path = (base_dir or Path.cwd()) / path
            return cls("sqlite", path=path, display=text)
        if text.startswith(("postgresql://", "postgres://")):
            try:
                parts = urlsplit(text)
                parts.port  # noqa: B018 - raises ValueError for a malformed port
            except ValueError as exc:
                raise UsageError(f"invalid ledger URL {shown!r}: {exc}") from exc
            database = parts.path.lstrip("/")
            if not parts.hostname and not parts.netloc.endswith("@") and parts.netloc:
                raise UsageError(f"invalid ledger URL {shown!r}: {usage}")
            if not database or "/" in database or any(c.isspace() for c in text):
                raise UsageError(f"invalid ledger URL {shown!r}: {usage}")
            return cls("postgres", url=text, display=shown)
        raise UsageError(f"invalid ledger URL {shown!r}: {usage}")

    def __str__(self) -> str:
        return self.display


@dataclass(frozen=True)
class RuntimeLocation:
    """Where an environment's images run: an ECS cluster or service, Lambda functions of a region,
    a Kubernetes namespace, or a file listing image references.

    `text` is the form the user wrote; `str()` returns it, and `parse(str(x)) == x` (for a file,
    given the same base folder).
    """

    kind: RuntimeKind
    text: str
    #: ecs: the cluster's name (the last part of an ARN).
    cluster: str = ""
    #: ecs: one service, or None for every service and task of the cluster.
    service: str | None = None
    #: lambda: the region; ecs: the region of a cluster given by ARN ("" = the AWS default region).
    region: str = ""
    #: lambda: a function name or glob ("*" = every function).
    function: str = ""
    #: k8s: the kubeconfig context.
    context: str = ""
    #: k8s: the namespace ("*" = every namespace).
    namespace: str = ""
    #: file: the file, absolute once parsed with a base folder.
    path: Path | None = None

    @classmethod
    def parse(cls, text: str, *, base_dir: Path | None = None) -> RuntimeLocation:
        """Parse a runtime location (UsageError, exit 2, when malformed)."""
        if not isinstance(text, str) or not text or text != text.strip() or _has_control(text):
            raise UsageError(f"runtime {text!r}: empty, surrounded by spaces or with control characters")
        kind, sep, rest = text.partition(":")
        if not sep or kind not in RUNTIME_KINDS or not rest:
            raise UsageError(f"runtime {text!r}: {_RUNTIME_USAGE}")
        if kind == "ecs":
            return cls._ecs(text, rest)
        if kind == "lambda":
            region, slash, function = rest.partition("/")
            if not slash or not _AWS_REGION.match(region) or not _LAMBDA_NAME.match(function):
                raise UsageError(
                    f"runtime {text!r}: expected lambda:REGION/FUNCTION or lambda:REGION/*, e.g."
                    " lambda:eu-west-1/* (function names: letters, digits, '-', '_'; '*' and '?' match)"
                )
            return cls("lambda", text, region=region, function=function)
        if kind == "k8s":
            context, slash, namespace = rest.rpartition("/")
            if not slash or not context or not (namespace == "*" or _K8S_NAMESPACE.match(namespace)):
                raise UsageError(
                    f"runtime {text!r}: expected k8s:CONTEXT/NAMESPACE (a kubeconfig context, and a"
                    " namespace of lower-case letters, digits and '-', or *)"
                )
            return cls("k8s", text, context=context, namespace=namespace)
        path = Path(rest)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return cls("file", text, path=path.resolve())

    @classmethod
    def _ecs(cls, text: str, rest: str) -> RuntimeLocation:
        region = ""
        service: str | None = None
        if rest.startswith("arn:"):
            base, slash, tail = rest, "", ""
            parts = rest.split("/")
            if len(parts) == 3:
                base, slash, tail = f"{parts[0]}/{parts[1]}", "/", parts[2]
            arn = _ECS_CLUSTER_ARN.match(base)
            if arn is None or (slash and not _ECS_NAME.match(tail)):
                raise UsageError(
                    f"runtime {text!r}: expected ecs:arn:aws:ecs:REGION:ACCOUNT:cluster/NAME[/SERVICE]"
                )
            region, cluster, service = arn.group(1), arn.group(3), tail or None
        else:
            cluster, slash, tail = rest.partition("/")
            if not _ECS_NAME.match(cluster) or (slash and not _ECS_NAME.match(tail)):
                raise UsageError(
                    f"runtime {text!r}: expected ecs:CLUSTER or ecs:CLUSTER/SERVICE (names of letters,"
                    " digits, '-' and '_')"
                )
            service = tail or None
        return cls("ecs", text, cluster=cluster, service=service, region=region)

    def __str__(self) -> str:
        return self.text


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


def redact_url(url: str, *, keep_query: Collection[str] | None = None) -> str:
    """`url` without its secrets: a userinfo password becomes `***`, and so does the value of a
    `password=` query parameter.

    With `keep_query` (URLs a registry hands out: upload sessions, signed redirects), the value of
    every query parameter not named there becomes `***`. A query with nothing to hide is kept as
    written.
    """
    try:
        parts = urlsplit(url)
        redacted = url
        if parts.password is not None:
            userinfo, _, host = parts.netloc.rpartition("@")
            redacted = redacted.replace(parts.netloc, f"{userinfo.partition(':')[0]}:***@{host}", 1)

        def hidden(key: str) -> bool:
            return key not in keep_query if keep_query is not None else key.lower() == "password"

        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(hidden(key) for key, _ in pairs):
            base, _, rest = redacted.partition("?")
            _query, hash_, fragment = rest.partition("#")
            shown = [(key, "***" if hidden(key) else value) for key, value in pairs]
            redacted = f"{base}?{urlencode(shown, safe='*:/,')}{hash_}{fragment}"
        return redacted
    except ValueError:
        return "<unparsable URL>"
