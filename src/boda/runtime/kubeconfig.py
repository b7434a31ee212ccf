"""Kubernetes credentials from kubeconfig, read the way kubectl reads them.

- Files: `$KUBECONFIG` (a list separated by os.pathsep; empty entries and missing files are
  skipped), else `~/.kube/config`. Merged as kubectl merges: the first file that names a cluster,
  user or context wins, and so does the first `current-context`.
- Paths in a file (certificate-authority, client-certificate, client-key, tokenFile, an exec
  command with a path separator) are relative to that file's folder.
- Server trust: certificate-authority-data or certificate-authority, else the system's roots;
  insecure-skip-tls-verify; tls-server-name (the name checked and sent as SNI); proxy-url.
- Client identity: client-certificate(-data) and client-key(-data), token or tokenFile,
  username/password, or an `exec` plugin (client.authentication.k8s.io/v1 or v1beta1, as EKS's
  `aws eks get-token` and GKE's plugin use it), run without a terminal.

Credentials go only to the cluster's server and are never printed; certificate and key data pass
through private temporary files (mode 0600) that are removed as soon as TLS has loaded them.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boda.runtime.base import RuntimeUnavailable

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_TIMEOUT = 60.0
_HINT = "kubeconfig is read like kubectl reads it: $KUBECONFIG, else ~/.kube/config"


@dataclass(frozen=True)
class _Entry:
    """A named cluster, user or context, and the folder of the file that defined it."""

    data: Mapping[str, Any]
    folder: Path


@dataclass(frozen=True)
class KubeConfig:
    """Merged kubeconfig files."""

    files: tuple[Path, ...]
    clusters: Mapping[str, _Entry]
    users: Mapping[str, _Entry]
    contexts: Mapping[str, _Entry]
    current_context: str | None


def kubeconfig_files(environ: Mapping[str, str] | None = None, home: Path | None = None) -> list[Path]:
    """The files kubectl would read, in merge order."""
    env = os.environ if environ is None else environ
    listed = env.get("KUBECONFIG")
    if listed:
        return [Path(p).expanduser() for p in listed.split(os.pathsep) if p]
    return [(home or Path.home()) / ".kube" / "config"]


def load_kubeconfig(
    runtime: str, *, environ: Mapping[str, str] | None = None, home: Path | None = None
) -> KubeConfig:
    """Read and merge the kubeconfig files (RuntimeUnavailable when none can be read)."""
    import yaml  # PyYAML: the `runtime` extra

    clusters: dict[str, _Entry] = {}
    users: dict[str, _Entry] = {}
    contexts: dict[str, _Entry] = {}
    current: str | None = None
    read: list[Path] = []
    candidates = kubeconfig_files(environ, home)
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise RuntimeUnavailable(runtime, f"cannot read kubeconfig {path}: {exc}") from exc
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            first = " ".join(str(exc).split())[:200]
            raise RuntimeUnavailable(runtime, f"kubeconfig {path} is not valid YAML: {first}") from exc
        if not isinstance(data, dict):
            raise RuntimeUnavailable(runtime, f"kubeconfig {path} is not a kubeconfig (not a mapping)")
        read.append(path)
        folder = path.resolve().parent
        for key, inner, target in (
            ("clusters", "cluster", clusters),
            ("users", "user", users),
            ("contexts", "context", contexts),
        ):
            for item in data.get(key) or ():
                if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                    raise RuntimeUnavailable(runtime, f"kubeconfig {path}: an entry of {key} has no name")
                body = item.get(inner) or {}
                if not isinstance(body, dict):
                    raise RuntimeUnavailable(
                        runtime, f"kubeconfig {path}: {key} {item['name']!r} is not a mapping"
                    )
                target.setdefault(item["name"], _Entry(body, folder))
        if current is None and data.get("current-context"):
            current = str(data["current-context"])
    if not read:
        shown = ", ".join(str(p) for p in candidates) or "(none)"
        raise RuntimeUnavailable(runtime, f"no kubeconfig found (looked at {shown})", hint=_HINT)
    return KubeConfig(tuple(read), clusters, users, contexts, current)


@dataclass
class ClusterAccess:
    """How to reach one context's API server: URL, TLS context, and the credentials to send."""

    context: str
    server: str
    ssl_context: ssl.SSLContext = field(repr=False)
    #: The Authorization header value, or None (client certificates only).
    authorization: str | None = field(default=None, repr=False)
    tls_server_name: str | None = None
    proxy: str | None = None
    #: The exec plugin, run again when the server rejects an expired token.
    plugin: ExecPlugin | None = field(default=None, repr=False)

    def refresh(self) -> bool:
        """Run the exec plugin again after a 401; False when there is nothing to refresh."""
        if self.plugin is None:
            return False
        credential = self.plugin.run()
        self.authorization, client_cert = credential
        if client_cert is not None:
            _load_cert_data(self.ssl_context, *client_cert)
        return True


def cluster_access(config: KubeConfig, context: str, runtime: str) -> ClusterAccess:
    """Server, trust and credentials of `context` (RuntimeUnavailable when incomplete)."""
    files = ", ".join(str(p) for p in config.files)
    entry = config.contexts.get(context)
    if entry is None:
        known = ", ".join(sorted(config.contexts)) or "none"
        raise RuntimeUnavailable(
            runtime, f"kubeconfig ({files}) has no context {context!r} (contexts: {known})", hint=_HINT
        )
    cluster_name = entry.data.get("cluster")
    user_name = entry.data.get("user")
    cluster = config.clusters.get(str(cluster_name))
    if cluster is None:
        raise RuntimeUnavailable(
            runtime, f"kubeconfig context {context!r} names an unknown cluster {cluster_name!r}"
        )
    server = cluster.data.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise RuntimeUnavailable(runtime, f"kubeconfig cluster {cluster_name!r} has no https:// server")
    user = config.users.get(str(user_name)) if user_name else None
    if user_name and user is None:
        raise RuntimeUnavailable(
            runtime, f"kubeconfig context {context!r} names an unknown user {user_name!r}"
        )
    ssl_context = _trust(cluster, runtime)
    access = ClusterAccess(
        context,
        server.rstrip("/"),
        ssl_context,
        tls_server_name=cluster.data.get("tls-server-name") or None,
        proxy=cluster.data.get("proxy-url") or None,
    )
    if user is not None:
        _identity(access, user, cluster, runtime)
    return access


def _path(entry: _Entry, value: Any) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else entry.folder / path


def _decode(value: Any, what: str, runtime: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RuntimeUnavailable(runtime, f"kubeconfig {what} is not valid base64") from exc


def _trust(cluster: _Entry, runtime: str) -> ssl.SSLContext:
    data = cluster.data
    try:
        if data.get("insecure-skip-tls-verify"):
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif data.get("certificate-authority-data"):
            pem = _decode(data["certificate-authority-data"], "certificate-authority-data", runtime)
            context = ssl.create_default_context(cadata=pem.decode("ascii", "replace"))
        elif data.get("certificate-authority"):
            context = ssl.create_default_context(cafile=str(_path(cluster, data["certificate-authority"])))
        else:
            context = ssl.create_default_context()
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise RuntimeUnavailable(runtime, f"kubeconfig certificate authority: {exc}") from exc
    return context


def _identity(access: ClusterAccess, user: _Entry, cluster: _Entry, runtime: str) -> None:
    data = user.data
    cert_data, key_data = data.get("client-certificate-data"), data.get("client-key-data")
    cert_file, key_file = data.get("client-certificate"), data.get("client-key")
    try:
        if cert_data or key_data:
            if not (cert_data and key_data):
                raise RuntimeUnavailable(
                    runtime, "kubeconfig user has a client certificate or key without the other"
                )
            _load_cert_data(
                access.ssl_context,
                _decode(cert_data, "client-certificate-data", runtime),
                _decode(key_data, "client-key-data", runtime),
            )
        elif cert_file or key_file:
            if not (cert_file and key_file):
                raise RuntimeUnavailable(
                    runtime, "kubeconfig user has a client certificate or key without the other"
                )
            access.ssl_context.load_cert_chain(str(_path(user, cert_file)), str(_path(user, key_file)))
    except (OSError, ssl.SSLError) as exc:
        raise RuntimeUnavailable(runtime, f"kubeconfig client certificate: {exc}") from exc
    if data.get("token"):
        access.authorization = f"Bearer {data['token']}"
    elif data.get("tokenFile"):
        path = _path(user, data["tokenFile"])
        try:
            access.authorization = f"Bearer {path.read_text(encoding='utf-8').strip()}"
        except OSError as exc:
            raise RuntimeUnavailable(runtime, f"kubeconfig tokenFile {path}: {exc.strerror}") from exc
    elif data.get("username") is not None and data.get("password") is not None:
        pair = f"{data['username']}:{data['password']}".encode()
        access.authorization = f"Basic {base64.b64encode(pair).decode('ascii')}"
    elif data.get("exec"):
        access.plugin = ExecPlugin(data["exec"], user.folder, cluster, runtime)
        authorization, client_cert = access.plugin.run()
        access.authorization = authorization
        if client_cert is not None:
            _load_cert_data(access.ssl_context, *client_cert)
    elif data.get("auth-provider"):
        name = (data["auth-provider"] or {}).get("name", "?")
        raise RuntimeUnavailable(
            runtime,
            f"kubeconfig user uses the auth-provider {name!r}, which kubectl no longer supports",
            hint="use the provider's exec plugin (gke-gcloud-auth-plugin, kubelogin, aws eks get-token)",
        )


def _load_cert_data(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """Load a PEM certificate and key given as bytes (ssl only loads files: private temporary ones)."""
    with tempfile.TemporaryDirectory(prefix="boda-kube-") as folder:
        cert_path, key_path = Path(folder, "client.crt"), Path(folder, "client.key")
        for path, content in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
        context.load_cert_chain(str(cert_path), str(key_path))


class ExecPlugin:
    """A kubeconfig `exec` credential plugin, run without a terminal."""

    def __init__(self, spec: Any, folder: Path, cluster: _Entry, runtime: str) -> None:
        if not isinstance(spec, dict) or not isinstance(spec.get("command"), str) or not spec["command"]:
            raise RuntimeUnavailable(runtime, "kubeconfig exec plugin has no command")
        self.runtime = runtime
        self.api_version = str(spec.get("apiVersion", ""))
        if self.api_version not in EXEC_API_VERSIONS:
            raise RuntimeUnavailable(
                runtime,
                f"kubeconfig exec plugin apiVersion {self.api_version!r} is not supported"
                f" (supported: {', '.join(EXEC_API_VERSIONS)})",
            )
        if spec.get("interactiveMode") == "Always":
            raise RuntimeUnavailable(
                runtime,
                "kubeconfig exec plugin needs a terminal (interactiveMode: Always); boda runs without one",
            )
        command = spec["command"]
        self.command = (
            str(folder / command) if (os.sep in command and not os.path.isabs(command)) else command
        )
        self.args = [str(a) for a in spec.get("args") or ()]
        self.env = {
            str(e["name"]): str(e.get("value", "")) for e in spec.get("env") or () if isinstance(e, dict)
        }
        self.install_hint = " ".join(str(spec.get("installHint") or "").split())[:300] or None
        self.cluster_info = _cluster_info(cluster, runtime) if spec.get("provideClusterInfo") else None

    def run(self) -> tuple[str | None, tuple[bytes, bytes] | None]:
        """Run the plugin: (Authorization header or None, (cert PEM, key PEM) or None)."""
        program = shutil.which(self.command) if os.sep not in self.command else self.command
        if program is None or not os.path.exists(program):
            raise RuntimeUnavailable(
                self.runtime, f"kubeconfig exec plugin {self.command!r} not found", hint=self.install_hint
            )
        spec: dict[str, Any] = {"interactive": False}
        if self.cluster_info is not None:
            spec["cluster"] = self.cluster_info
        info = {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": spec}
        env = {**os.environ, **self.env, "KUBERNETES_EXEC_INFO": json.dumps(info)}
        try:
            done = subprocess.run(
                [program, *self.args],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=EXEC_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeUnavailable(
                self.runtime, f"kubeconfig exec plugin {self.command!r} failed: {exc}"
            ) from exc
        if done.returncode != 0:
            said = " ".join(done.stderr.decode("utf-8", "replace").split())[-300:]
            raise RuntimeUnavailable(
                self.runtime,
                f"kubeconfig exec plugin {self.command!r} exited with {done.returncode}"
                + (f": {said}" if said else ""),
                hint=self.install_hint,
            )
        return self._credential(done.stdout)

    def _credential(self, out: bytes) -> tuple[str | None, tuple[bytes, bytes] | None]:
        try:
            answer = json.loads(out)
        except ValueError as exc:
            raise RuntimeUnavailable(
                self.runtime, f"kubeconfig exec plugin {self.command!r} did not print an ExecCredential"
            ) from exc
        if not isinstance(answer, dict) or answer.get("kind") != "ExecCredential":
            raise RuntimeUnavailable(
                self.runtime, f"kubeconfig exec plugin {self.command!r} did not print an ExecCredential"
            )
        if answer.get("apiVersion") != self.api_version:
            raise RuntimeUnavailable(
                self.runtime,
                f"kubeconfig exec plugin {self.command!r} answered apiVersion {answer.get('apiVersion')!r},"
                f" not {self.api_version!r}",
            )
        status = answer.get("status") or {}
        token = status.get("token")
        cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
        if token:
            return f"Bearer {token}", None
        if cert and key:
            return None, (str(cert).encode(), str(key).encode())
        raise RuntimeUnavailable(
            self.runtime,
            f"kubeconfig exec plugin {self.command!r} gave neither a token nor a client certificate",
        )


def _cluster_info(cluster: _Entry, runtime: str) -> dict[str, Any]:
    """The `spec.cluster` an exec plugin with provideClusterInfo receives."""
    data = cluster.data
    info: dict[str, Any] = {"server": data.get("server", "")}
    for key in ("tls-server-name", "insecure-skip-tls-verify", "proxy-url", "disable-compression"):
        if data.get(key):
            info[key] = data[key]
    if data.get("certificate-authority-data"):
        info["certificate-authority-data"] = data["certificate-authority-data"]
    elif data.get("certificate-authority"):
        path = _path(cluster, data["certificate-authority"])
        try:
            info["certificate-authority-data"] = base64.b64encode(path.read_bytes()).decode("ascii")
        except OSError as exc:
            raise RuntimeUnavailable(
                runtime, f"kubeconfig certificate-authority {path}: {exc.strerror}"
            ) from exc
    for extension in data.get("extensions") or ():
        if isinstance(extension, dict) and extension.get("name") == "client.authentication.k8s.io/exec":
            info["config"] = extension.get("extension")
    return info
