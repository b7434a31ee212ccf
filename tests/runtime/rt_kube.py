"""A Kubernetes API server stand-in for the observer tests, and the PKI and kubeconfig files around it.

No API server can be installed here, so `FakeKube` answers GET list requests in the shape the real
API documents: `{"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion", "continue",
"remainingItemCount"}, "items": [...]}`, pages cut by `limit` and continued by an opaque `continue`
token, failures as `Status` objects (`{"kind": "Status", "status": "Failure", "reason", "message",
"code"}`), and 410 `Expired` for a continue token that is too old. It serves HTTPS with a
certificate of its own CA, can require a client certificate of another CA, and a bearer token.
Faults are injected per list and page: `fail[(resource, page)] = status`, `expire.add((resource,
page))` (one 410, then the token works), `flaky[(resource, page)] = n` (n 503 answers first).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

KINDS = {
    "pods": ("v1", "PodList"),
    "replicasets": ("apps/v1", "ReplicaSetList"),
    "deployments": ("apps/v1", "DeploymentList"),
    "statefulsets": ("apps/v1", "StatefulSetList"),
    "daemonsets": ("apps/v1", "DaemonSetList"),
    "controllerrevisions": ("apps/v1", "ControllerRevisionList"),
    "jobs": ("batch/v1", "JobList"),
    "cronjobs": ("batch/v1", "CronJobList"),
}
REASONS = {
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    410: "Expired",
    500: "InternalError",
    503: "ServiceUnavailable",
}


@dataclass
class Pair:
    """A PEM certificate and key, written to files as well."""

    cert: bytes
    key: bytes
    cert_path: Path
    key_path: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(folder: Path, name: str) -> tuple[Pair, Any, x509.Certificate]:
    """A self-signed CA; returns its files, key and certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(folder, name, cert, key), key, cert


def make_leaf(
    folder: Path, name: str, ca_key: Any, ca_cert: x509.Certificate, *, server: bool, ip: bool = True
) -> Pair:
    """A certificate signed by the CA: for kube.test and (`ip`) 127.0.0.1, or for a user (client)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("kube.test")]
                + ([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))] if ip else [])
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return _write(folder, name, builder.sign(ca_key, hashes.SHA256()), key)


def _write(folder: Path, name: str, cert: x509.Certificate, key: Any) -> Pair:
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    return Pair(cert_pem, key_pem, cert_path, key_path)


@dataclass
class Pki:
    """The cluster's CA and server certificate; a client CA and a client certificate it signed."""

    ca: Pair
    server: Pair
    #: A server certificate for kube.test only: reached at 127.0.0.1, it needs tls-server-name.
    server_named: Pair
    client_ca: Pair
    client: Pair
    other_ca: Pair

    @classmethod
    def create(cls, folder: Path) -> Pki:
        folder.mkdir(parents=True, exist_ok=True)
        ca, ca_key, ca_cert = make_ca(folder, "cluster-ca")
        client_ca, cca_key, cca_cert = make_ca(folder, "client-ca")
        other_ca, _, _ = make_ca(folder, "other-ca")
        server = make_leaf(folder, "apiserver", ca_key, ca_cert, server=True)
        named = make_leaf(folder, "apiserver-named", ca_key, ca_cert, server=True, ip=False)
        client = make_leaf(folder, "boda-user", cca_key, cca_cert, server=False)
        return cls(ca, server, named, client_ca, client, other_ca)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class FakeKube:
    """The objects a cluster holds, per resource (each item carries its metadata.namespace)."""

    objects: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in KINDS})
    #: Accepted bearer tokens (empty: none needed).
    tokens: set[str] = field(default_factory=set)
    fail: dict[tuple[str, int], int] = field(default_factory=dict)
    expire: set[tuple[str, int]] = field(default_factory=set)
    flaky: dict[tuple[str, int], int] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, resource: str, item: dict[str, Any]) -> None:
        self.objects[resource].append(item)

    def answer(
        self, method: str, target: str, headers: dict[str, str], peer_cert: Any
    ) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            self.requests.append(
                {
                    "path": parts.path,
                    "query": query,
                    "authorization": headers.get("authorization"),
                    "cert": peer_cert,
                }
            )
        if method != "GET":
            return self._status(405, "method not allowed")
        if self.tokens and headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            return self._status(401, "Unauthorized")
        segments = parts.path.strip("/").split("/")
        resource = segments[-1]
        namespace = segments[segments.index("namespaces") + 1] if "namespaces" in segments else None
        if resource not in KINDS or not _prefix_ok(segments, resource):
            return self._status(404, f"the server could not find the requested resource ({parts.path})")
        token = query.get("continue")
        start = int(json.loads(base64.b64decode(token))["offset"]) if token else 0
        limit = int(query.get("limit", "0")) or 10**9
        page = start // limit if limit < 10**9 else 0
        key = (resource, page)
        with self.lock:
            if key in self.flaky and self.flaky[key] > 0:
                self.flaky[key] -= 1
                return self._status(503, "etcd is busy")
            if key in self.expire and token:
                self.expire.discard(key)
                return self._status(
                    410,
                    "The provided continue parameter is too old to display a consistent list result."
                    " You can start a new list without the continue parameter.",
                )
        if key in self.fail:
            code = self.fail[key]
            return self._status(
                code, f'{resource} is forbidden: User "boda" cannot list resource "{resource}"'
            )
        items = [
            i
            for i in self.objects[resource]
            if namespace is None or i["metadata"].get("namespace") == namespace
        ]
        chunk = items[start : start + limit]
        rest = len(items) - start - len(chunk)
        meta: dict[str, Any] = {"resourceVersion": "4242"}
        if rest > 0:
            meta["continue"] = b64(json.dumps({"offset": start + limit, "rv": 4242}).encode())
            meta["remainingItemCount"] = rest
        api_version, kind = KINDS[resource]
        return 200, {"kind": kind, "apiVersion": api_version, "metadata": meta, "items": chunk}

    @staticmethod
    def _status(code: int, message: str) -> tuple[int, dict[str, Any]]:
        return code, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": REASONS.get(code, "Unknown"),
            "code": code,
        }


def _prefix_ok(segments: list[str], resource: str) -> bool:
    api_version = KINDS[resource][0]
    if api_version == "v1":
        return segments[:2] == ["api", "v1"]
    group, version = api_version.split("/")
    return segments[:3] == ["apis", group, version]


@contextmanager
def serve(kube: FakeKube, pki: Pki, *, client_ca: bool = False, named: bool = False) -> Iterator[str]:
    """Serve `kube` over HTTPS on 127.0.0.1; yields the server URL. With `client_ca`, a client
    certificate signed by the client CA is required; with `named`, the certificate is for kube.test
    only."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf = pki.server_named if named else pki.server
    context.load_cert_chain(leaf.cert_path, leaf.key_path)
    if client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(pki.client_ca.cert_path))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            code, body = kube.answer("GET", self.path, headers, peer)
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if code == 503:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def kubeconfig(
    path: Path,
    *,
    contexts: list[dict[str, Any]],
    clusters: list[dict[str, Any]],
    users: list[dict[str, Any]],
    current: str | None = None,
) -> Path:
    """Write a kubeconfig file in YAML, the way kubectl writes them."""
    import yaml

    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": clusters,
        "users": users,
        "contexts": contexts,
    }
    if current is not None:
        document["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def meta(
    name: str, namespace: str = "shop", owner: tuple[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """`metadata` of an object, controlled by `owner` (kind, name) when given."""
    data: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}", **extra}
    if owner is not None:
        data["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": owner[0],
                "name": owner[1],
                "uid": f"uid-{owner[1]}",
                "controller": True,
            }
        ]
    return data


def template(*containers: tuple[str, str], init: tuple[str, str] | None = None) -> dict[str, Any]:
    """A pod template with (name, image) containers."""
    spec: dict[str, Any] = {"containers": [{"name": n, "image": i} for n, i in containers]}
    if init is not None:
        spec["initContainers"] = [{"name": init[0], "image": init[1]}]
    return {"metadata": {"labels": {"app": "x"}}, "spec": spec}
