"""kubeconfig as kubectl reads it, against real files and a TLS server: merged KUBECONFIG files,
relative paths, CA data and files, client certificates (data and files), tokens and token files,
insecure-skip-tls-verify, tls-server-name, and `exec` plugins (EKS's shape)."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rt_kube import FakeKube, Pki, b64, kubeconfig, meta, serve

from boda.locations import RuntimeLocation
from boda.runtime.base import RuntimeUnavailable
from boda.runtime.k8s import KubernetesObserver
from boda.runtime.kubeconfig import kubeconfig_files, load_kubeconfig

IMAGE = "registry.example.com/shop/web:prd"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


def one_pod() -> FakeKube:
    kube = FakeKube()
    kube.add(
        "pods",
        {
            "metadata": meta("web-1"),
            "spec": {"containers": [{"name": "web", "image": IMAGE}]},
            "status": {"phase": "Running"},
        },
    )
    return kube


def read(environ: dict[str, str], runtime: str = "k8s:prod/shop") -> list[str]:
    obs = KubernetesObserver(RuntimeLocation.parse(runtime), environ=environ, sleep=lambda s: None)
    try:
        return [i.image for i in obs.observe().images]
    finally:
        obs.close()


@pytest.fixture
def kube() -> FakeKube:
    return one_pod()


@pytest.fixture
def url(kube: FakeKube, pki: Pki) -> Iterator[str]:
    with serve(kube, pki) as found:
        yield found


def test_files_merge_as_kubectl_merges_them(tmp_path: Path, url: str, pki: Pki, kube: FakeKube) -> None:
    """The first file naming a context, cluster or user wins; missing files are skipped."""
    kube.tokens = {"first"}
    ca = {"certificate-authority-data": b64(pki.ca.cert)}
    first = kubeconfig(
        tmp_path / "a" / "config",
        clusters=[{"name": "c", "cluster": {"server": url, **ca}}],
        users=[{"name": "u", "user": {"token": "first"}}],
        contexts=[{"name": "prod", "context": {"cluster": "c", "user": "u"}}],
        current="prod",
    )
    second = kubeconfig(
        tmp_path / "b" / "config",
        clusters=[{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        users=[{"name": "u", "user": {"token": "second"}}, {"name": "v", "user": {"token": "first"}}],
        contexts=[
            {"name": "prod", "context": {"cluster": "elsewhere", "user": "u"}},
            {"name": "staging", "context": {"cluster": "c", "user": "v"}},
        ],
        current="staging",
    )
    environ = {"KUBECONFIG": os.pathsep.join([str(first), "", str(tmp_path / "missing"), str(second)])}
    merged = load_kubeconfig("k8s:prod/shop", environ=environ)
    assert merged.current_context == "prod" and merged.files == (first, second)
    assert set(merged.contexts) == {"prod", "staging"}
    assert read(environ) == [IMAGE]
    assert kube.requests[0]["authorization"] == "Bearer first"
    # `staging` comes from the second file but its cluster `c` from the first: the merged view.
    assert read(environ, "k8s:staging/shop") == [IMAGE]


def test_default_file_and_errors(tmp_path: Path) -> None:
    assert kubeconfig_files({}, home=tmp_path) == [tmp_path / ".kube" / "config"]
    with pytest.raises(RuntimeUnavailable, match="no kubeconfig found"):
        load_kubeconfig("k8s:x/y", environ={"KUBECONFIG": str(tmp_path / "none")})
    (tmp_path / "bad").write_text("clusters: [unclosed\n")
    with pytest.raises(RuntimeUnavailable, match="not valid YAML"):
        load_kubeconfig("k8s:x/y", environ={"KUBECONFIG": str(tmp_path / "bad")})
    path = kubeconfig(
        tmp_path / "k", clusters=[], users=[], contexts=[{"name": "a", "context": {"cluster": "c"}}]
    )
    with pytest.raises(RuntimeUnavailable, match=r"no context 'prod' \(contexts: a\)"):
        read({"KUBECONFIG": str(path)})
    with pytest.raises(RuntimeUnavailable, match="unknown cluster 'c'"):
        read({"KUBECONFIG": str(path)}, "k8s:a/shop")


def test_relative_ca_file_and_token_file(tmp_path: Path, url: str, pki: Pki, kube: FakeKube) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "ca.pem").write_bytes(pki.ca.cert)
    (folder / "token").write_text("from-file\n")
    kube.tokens = {"from-file"}
    path = kubeconfig(
        folder / "config",
        clusters=[{"name": "c", "cluster": {"server": url, "certificate-authority": "ca.pem"}}],
        users=[{"name": "u", "user": {"tokenFile": "token"}}],
        contexts=[{"name": "prod", "context": {"cluster": "c", "user": "u"}}],
    )
    assert read({"KUBECONFIG": str(path)}) == [IMAGE]


@pytest.mark.parametrize("form", ["data", "files"])
def test_client_certificates(tmp_path: Path, pki: Pki, form: str) -> None:
    kube = one_pod()
    with serve(kube, pki, client_ca=True) as url:
        user: dict[str, Any] = (
            {"client-certificate-data": b64(pki.client.cert), "client-key-data": b64(pki.client.key)}
            if form == "data"
            else {"client-certificate": str(pki.client.cert_path), "client-key": str(pki.client.key_path)}
        )
        path = kubeconfig(
            tmp_path / "config",
            clusters=[
                {"name": "c", "cluster": {"server": url, "certificate-authority-data": b64(pki.ca.cert)}}
            ],
            users=[{"name": "u", "user": user}],
            contexts=[{"name": "prod", "context": {"cluster": "c", "user": "u"}}],
        )
        assert read({"KUBECONFIG": str(path)}) == [IMAGE]
        subject = dict(x[0] for x in kube.requests[0]["cert"]["subject"])
        assert subject["commonName"] == "boda-user"
        # Without the certificate the server refuses the handshake.
        bare = kubeconfig(
            tmp_path / "bare",
            clusters=[
                {"name": "c", "cluster": {"server": url, "certificate-authority-data": b64(pki.ca.cert)}}
            ],
            users=[{"name": "u", "user": {}}],
            contexts=[{"name": "prod", "context": {"cluster": "c", "user": "u"}}],
        )
        with pytest.raises(RuntimeUnavailable, match="unreachable"):
            read({"KUBECONFIG": str(bare)})


def test_tls_server_name_and_insecure_skip(tmp_path: Path, pki: Pki) -> None:
    kube = one_pod()
    with serve(kube, pki, named=True) as url:
        base = {"server": url, "certificate-authority-data": b64(pki.ca.cert)}

        def config(name: str, **cluster: Any) -> dict[str, str]:
            path = kubeconfig(
                tmp_path / name,
                clusters=[{"name": "c", "cluster": cluster}],
                users=[{"name": "u", "user": {"token": "t"}}],
                contexts=[{"name": "prod", "context": {"cluster": "c", "user": "u"}}],
            )
            return {"KUBECONFIG": str(path)}

        with pytest.raises(RuntimeUnavailable, match="unreachable"):  # the certificate is for kube.test
            read(config("plain", **base))
        assert read(config("named", **base, **{"tls-server-name": "kube.test"})) == [IMAGE]
        assert read(config("insecure", server=url, **{"insecure-skip-tls-verify": True})) == [IMAGE]


def plugin(tmp_path: Path, body: str) -> Path:
    """An exec credential plugin: a Python script (the shape of `aws eks get-token`)."""
    script = tmp_path / "bin" / "get-token"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f"#!{sys.executable}\nimport json, os, sys\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def exec_config(tmp_path: Path, url: str, pki: Pki, exec_spec: dict[str, Any]) -> dict[str, str]:
    path = kubeconfig(
        tmp_path / "config",
        clusters=[
            {
                "name": "arn:aws:eks:eu-west-1:123456789012:cluster/prod",
                "cluster": {"server": url, "certificate-authority-data": b64(pki.ca.cert)},
            }
        ],
        users=[{"name": "eks-user", "user": {"exec": exec_spec}}],
        contexts=[
            {
                "name": "arn:aws:eks:eu-west-1:123456789012:cluster/prod",
                "context": {"cluster": "arn:aws:eks:eu-west-1:123456789012:cluster/prod", "user": "eks-user"},
            }
        ],
    )
    return {"KUBECONFIG": str(path), "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


EKS = "k8s:arn:aws:eks:eu-west-1:123456789012:cluster/prod/shop"


def test_an_exec_plugin_as_eks_uses_it(
    tmp_path: Path, url: str, pki: Pki, kube: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube.tokens = {"k8s-aws-v1.token"}
    seen = tmp_path / "seen.json"
    plugin(
        tmp_path,
        f"""
open({str(seen)!r}, "w").write(json.dumps({{"info": json.loads(os.environ["KUBERNETES_EXEC_INFO"]),
    "args": sys.argv[1:], "env": os.environ.get("AWS_PROFILE"), "stdin_tty": sys.stdin.isatty()}}))
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
    "status": {{"token": "k8s-aws-v1.token", "expirationTimestamp": "2099-01-01T00:00:00Z"}}}}))
""",
    )
    spec = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "get-token",
        "args": ["eks", "get-token", "--cluster-name", "prod"],
        "env": [{"name": "AWS_PROFILE", "value": "prod"}],
        "provideClusterInfo": True,
        "interactiveMode": "IfAvailable",
    }
    environ = exec_config(tmp_path, url, pki, spec)
    monkeypatch.setenv("PATH", environ["PATH"])  # the plugin is found on PATH, as kubectl finds it
    assert read(environ, EKS) == [IMAGE]
    called = json.loads(seen.read_text())
    assert called["args"] == ["eks", "get-token", "--cluster-name", "prod"] and called["env"] == "prod"
    assert called["info"]["spec"]["interactive"] is False and called["stdin_tty"] is False
    assert called["info"]["spec"]["cluster"]["server"] == url
    assert called["info"]["spec"]["cluster"]["certificate-authority-data"] == b64(pki.ca.cert)


def test_an_expired_exec_token_is_renewed_once(tmp_path: Path, url: str, pki: Pki, kube: FakeKube) -> None:
    kube.tokens = {"fresh"}
    count = tmp_path / "count"
    plugin(
        tmp_path,
        f"""
n = int(open({str(count)!r}).read()) if os.path.exists({str(count)!r}) else 0
open({str(count)!r}, "w").write(str(n + 1))
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
    "status": {{"token": "stale" if n == 0 else "fresh"}}}}))
""",
    )
    spec = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "./bin/get-token",  # relative to the kubeconfig file's folder
        "interactiveMode": "Never",
    }
    assert read(exec_config(tmp_path, url, pki, spec), EKS) == [IMAGE]
    assert count.read_text() == "2"
    assert [r["authorization"] for r in kube.requests][:2] == ["Bearer stale", "Bearer fresh"]


def test_an_exec_plugin_may_give_a_client_certificate(tmp_path: Path, pki: Pki) -> None:
    kube = one_pod()
    with serve(kube, pki, client_ca=True) as url:
        script = plugin(
            tmp_path,
            f"""
cert, key = {pki.client.cert.decode()!r}, {pki.client.key.decode()!r}
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
    "status": {{"clientCertificateData": cert, "clientKeyData": key}}}}))
""",
        )
        spec = {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(script),
            "interactiveMode": "Never",
        }
        assert read(exec_config(tmp_path, url, pki, spec), EKS) == [IMAGE]


@pytest.mark.parametrize(
    ("body", "spec", "message"),
    [
        (
            "sys.stderr.write('could not get token: ExpiredToken\\n'); sys.exit(255)",
            {},
            "exited with 255: could not get token",
        ),
        ("print('not json')", {}, "did not print an ExecCredential"),
        (
            "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1',"
            " 'kind': 'ExecCredential', 'status': {'token': 't'}}))",
            {},
            "answered apiVersion",
        ),
        (
            "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',"
            " 'kind': 'ExecCredential', 'status': {}}))",
            {},
            "neither a token",
        ),
        ("", {"interactiveMode": "Always"}, "needs a terminal"),
        ("", {"apiVersion": "client.authentication.k8s.io/v1alpha1"}, "not supported"),
        ("", {"command": "no-such-plugin", "installHint": "install aws-cli v2"}, "not found"),
    ],
)
def test_exec_plugin_failures_are_one_line(
    tmp_path: Path, pki: Pki, body: str, spec: dict[str, Any], message: str
) -> None:
    script = plugin(tmp_path, body)
    full = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": str(script),
        "interactiveMode": "Never",
        **spec,
    }
    with pytest.raises(RuntimeUnavailable, match=message) as caught:
        read(exec_config(tmp_path, "https://127.0.0.1:1", pki, full), EKS)
    assert "\n" not in caught.value.diagnostics()
    if "installHint" in spec:
        assert caught.value.hint == "install aws-cli v2"


def test_legacy_auth_providers_are_refused_with_a_hint(tmp_path: Path, pki: Pki) -> None:
    path = kubeconfig(
        tmp_path / "config",
        clusters=[{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        users=[
            {
                "name": "u",
                "user": {"auth-provider": {"name": "gcp", "config": {"access-token": "secret-token"}}},
            }
        ],
        contexts=[{"name": "prod", "context": {"cluster": "c", "user": "u"}}],
    )
    with pytest.raises(RuntimeUnavailable, match="auth-provider 'gcp'") as caught:
        read({"KUBECONFIG": str(path)})
    assert "secret-token" not in caught.value.diagnostics() and "gke-gcloud-auth-plugin" in (
        caught.value.hint or ""
    )
