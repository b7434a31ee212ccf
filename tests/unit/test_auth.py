"""Registry auth: challenges, bearer tokens and their cache, Docker config.json and credential helpers."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from boda.errors import ConfigError, RegistryDenied, RegistryError
from boda.registry import _auth
from boda.registry._auth import RegistryAuth, merge_scopes, parse_challenges, select_challenge
from boda.registry._credentials import Credentials, docker_config_path, load_credentials
from boda.registry.oci import OciRegistry
from boda.types import OCI_MANIFEST, Digest

HOST = "registry.test"
BASE = f"https://{HOST}"
REALM = "https://auth.test/token"
MANIFEST = (
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}'
)
DIGEST = Digest.of(MANIFEST)
Handler = Callable[[httpx.Request], httpx.Response]


def bearer(scope: str, error: str | None = None) -> dict[str, str]:
    value = f'Bearer realm="{REALM}",service="{HOST}",scope="{scope}"'
    if error:
        value += f',error="{error}"'
    return {"WWW-Authenticate": value}


def manifest_ok() -> httpx.Response:
    return httpx.Response(
        200, content=MANIFEST, headers={"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": str(DIGEST)}
    )


def protected(token: str, scope: str) -> Handler:
    """A side effect: 200 with the right bearer token, else 401 asking for `scope`."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") == f"Bearer {token}":
            return manifest_ok()
        return httpx.Response(401, headers=bearer(scope), json={"errors": [{"code": "UNAUTHORIZED"}]})

    return answer


def write_config(directory: Path, data: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(data))
    return path


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(autouse=True)
def isolated_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never read the real ~/.docker: DOCKER_CONFIG points at an empty tmp folder."""
    folder = tmp_path / "docker-empty"
    folder.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    return folder


# -- challenge parsing -----------------------------------------------------------------------------


def test_parse_bearer_challenge_with_quoted_commas() -> None:
    header = 'Bearer realm="https://auth.test/token",service="reg",scope="repository:a/b:pull,push"'
    (challenge,) = parse_challenges(header)
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.test/token"
    assert challenge.service == "reg"
    assert challenge.scopes == ["repository:a/b:pull,push"]


def test_parse_several_challenges_prefers_bearer() -> None:
    header = 'Basic realm="basic-realm", Bearer realm="https://a/t",scope="x:y:pull repository:z:push"'
    challenges = parse_challenges(header)
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    chosen = select_challenge(header)
    assert chosen is not None and chosen.scopes == ["x:y:pull", "repository:z:push"]
    basic_only = select_challenge('Basic realm="test-realm"')
    assert basic_only is not None and basic_only.scheme == "basic" and basic_only.realm == "test-realm"
    assert select_challenge("") is None


def test_merge_scopes_keeps_order_and_unions_actions() -> None:
    merged = merge_scopes(["repository:dst:push", "repository:src:pull"], ["repository:dst:pull"])
    assert merged == ["repository:dst:pull,push", "repository:src:pull"]
    assert merge_scopes(["repository:a:push,pull"], []) == ["repository:a:pull,push"]


# -- bearer tokens ---------------------------------------------------------------------------------


def test_bearer_flow_fetches_token_once_per_scope_set() -> None:
    with respx.mock(assert_all_called=True) as router:
        token = router.get(REALM).mock(
            return_value=httpx.Response(200, json={"token": "tok-1", "expires_in": 300})
        )
        router.get(f"{BASE}/v2/a/b/manifests/v1").mock(side_effect=protected("tok-1", "repository:a/b:pull"))
        reg = OciRegistry(HOST)
        assert reg.manifest_get("a/b", "v1").digest == DIGEST
        assert reg.manifest_get("a/b", "v1").digest == DIGEST
    assert token.call_count == 1
    query = parse_qs(token.calls.last.request.url.query.decode())
    assert query == {"service": [HOST], "scope": ["repository:a/b:pull"]}
    assert "Authorization" not in token.calls.last.request.headers  # anonymous token


def test_access_token_field_and_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(_auth.time, "monotonic", lambda: clock[0])  # type: ignore[attr-defined]
    with respx.mock() as router:
        token = router.get(REALM).mock(return_value=httpx.Response(200, json={"access_token": "acc"}))
        router.get(f"{BASE}/v2/a/manifests/v1").mock(side_effect=protected("acc", "repository:a:pull"))
        reg = OciRegistry(HOST)
        reg.manifest_get("a", "v1")
        clock[0] += 30  # within the default 60 s lifetime
        reg.manifest_get("a", "v1")
        assert token.call_count == 1
        clock[0] += 60  # expired: a new token is fetched before the request
        reg.manifest_get("a", "v1")
        assert token.call_count == 2


def test_401_asking_for_more_scope_re_exchanges() -> None:
    tokens = {"repository:a:pull": "pull-only", "repository:a:pull,push": "pull-push"}

    def token_for(request: httpx.Request) -> httpx.Response:
        scopes = parse_qs(request.url.query.decode())["scope"]
        return httpx.Response(200, json={"token": tokens[" ".join(scopes)]})

    def put(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") == "Bearer pull-push":
            return httpx.Response(201, headers={"Docker-Content-Digest": str(DIGEST)})
        return httpx.Response(401, headers=bearer("repository:a:push,pull", "insufficient_scope"))

    with respx.mock() as router:
        token = router.get(REALM).mock(side_effect=token_for)
        router.get(f"{BASE}/v2/a/manifests/v1").mock(side_effect=protected("pull-only", "repository:a:pull"))
        router.put(f"{BASE}/v2/a/manifests/v1").mock(side_effect=put)
        reg = OciRegistry(HOST)
        manifest = reg.manifest_get("a", "v1")
        assert reg.manifest_put("a", "v1", manifest) == DIGEST
    asked = [parse_qs(c.request.url.query.decode())["scope"] for c in token.calls]
    assert asked == [["repository:a:pull"], ["repository:a:pull,push"]]


def test_rejected_cached_token_is_refreshed_once() -> None:
    issued = iter(["old", "new"])
    with respx.mock() as router:
        token = router.get(REALM).mock(
            side_effect=lambda r: httpx.Response(200, json={"token": next(issued)})
        )
        route = router.get(f"{BASE}/v2/a/manifests/v1")
        route.mock(side_effect=protected("old", "repository:a:pull"))
        reg = OciRegistry(HOST)
        reg.manifest_get("a", "v1")
        route.mock(side_effect=protected("new", "repository:a:pull"))  # the registry revoked "old"
        reg.manifest_get("a", "v1")
    assert token.call_count == 2


def test_mount_token_carries_push_scope_first_then_source_pull() -> None:
    digest = Digest.of(b"layer")
    with respx.mock() as router:
        token = router.get(REALM).mock(return_value=httpx.Response(200, json={"token": "mount"}))

        def mount(request: httpx.Request) -> httpx.Response:
            if request.headers.get("Authorization") == "Bearer mount":
                return httpx.Response(201, headers={"Location": f"/v2/dst/blobs/{digest}"})
            return httpx.Response(401, headers=bearer("repository:dst:pull,push"))

        router.post(f"{BASE}/v2/dst/blobs/uploads/").mock(side_effect=mount)
        reg = OciRegistry(HOST)
        assert reg.blob_mount("dst", digest, "src") is True
    scopes = parse_qs(token.calls.last.request.url.query.decode())["scope"]
    assert scopes == ["repository:dst:pull,push", "repository:src:pull"]


def test_token_endpoint_refusal_is_denied_without_secrets(isolated_docker_config: Path) -> None:
    write_config(
        isolated_docker_config, {"auths": {HOST: {"auth": base64.b64encode(b"me:hunter2").decode()}}}
    )
    with respx.mock() as router:
        router.get(REALM).mock(return_value=httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED"}]}))
        router.get(f"{BASE}/v2/a/manifests/v1").mock(side_effect=protected("x", "repository:a:pull"))
        reg = OciRegistry(HOST)
        with pytest.raises(RegistryDenied) as caught:
            reg.manifest_get("a", "v1")
    text = caught.value.diagnostics() + repr(caught.value) + repr(reg)
    assert "hunter2" not in text and base64.b64encode(b"me:hunter2").decode() not in text
    assert "token request for registry.test was refused" in caught.value.message
    assert caught.value.hint is not None and "docker login registry.test" in caught.value.hint
    assert "\n" not in caught.value.message


def test_identity_token_uses_oauth_refresh_grant(isolated_docker_config: Path) -> None:
    write_config(
        isolated_docker_config, {"auths": {f"https://{HOST}": {"auth": "", "identitytoken": "refresh-me"}}}
    )
    with respx.mock() as router:
        token = router.post(REALM).mock(return_value=httpx.Response(200, json={"access_token": "granted"}))
        router.get(f"{BASE}/v2/a/manifests/v1").mock(side_effect=protected("granted", "repository:a:pull"))
        OciRegistry(HOST).manifest_get("a", "v1")
    form = parse_qs(token.calls.last.request.content.decode())
    assert form["grant_type"] == ["refresh_token"]
    assert form["refresh_token"] == ["refresh-me"]
    assert form["scope"] == ["repository:a:pull"]
    assert form["service"] == [HOST]


# -- basic auth and config.json --------------------------------------------------------------------


def basic_protected(user: str, password: str) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") == basic(user, password):
            return manifest_ok()
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="test-realm"'})

    return answer


def test_basic_auth_from_config_auths(isolated_docker_config: Path) -> None:
    encoded = base64.b64encode(b"alice:pa:ss").decode()  # a password may contain ':'
    write_config(isolated_docker_config, {"auths": {f"http://{HOST}/v1/": {"auth": encoded}}})
    with respx.mock() as router:
        route = router.get(f"{BASE}/v2/a/manifests/v1").mock(side_effect=basic_protected("alice", "pa:ss"))
        reg = OciRegistry(HOST)
        reg.manifest_get("a", "v1")
        reg.manifest_get("a", "v1")
    # one anonymous try that learns the challenge, then Basic straight away
    assert route.call_count == 3


def test_wrong_basic_credentials_are_denied_once_with_hint(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "elsewhere", {"auths": {HOST: {"auth": base64.b64encode(b"bob:wrong").decode()}}}
    )
    with respx.mock() as router:
        route = router.get(f"{BASE}/v2/a/manifests/v1").mock(side_effect=basic_protected("bob", "right"))
        reg = OciRegistry(HOST, docker_config=config)
        with pytest.raises(RegistryDenied) as caught:
            reg.manifest_get("a", "v1")
    assert route.call_count == 2
    assert caught.value.status == 401
    assert "wrong" not in caught.value.diagnostics()
    assert "docker login registry.test" in caught.value.diagnostics()


def test_anonymous_on_basic_registry_is_denied_with_login_hint() -> None:
    with respx.mock() as router:
        router.get(f"{BASE}/v2/a/manifests/v1").mock(side_effect=basic_protected("u", "p"))
        with pytest.raises(RegistryDenied) as caught:
            OciRegistry(HOST).manifest_get("a", "v1")
    assert caught.value.hint is not None and "log in with 'docker login registry.test'" in caught.value.hint


def fake_helper(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def helper_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_cred_helper_for_host_is_run_with_host_on_stdin(
    isolated_docker_config: Path, helper_path: Path, tmp_path: Path
) -> None:
    seen = tmp_path / "stdin.txt"
    fake_helper(
        helper_path,
        "test",
        f'[ "$1" = get ] || exit 3\ncat > {seen}\n'
        'echo \'{"ServerURL":"x","Username":"carol","Secret":"s3"}\'\n',
    )
    write_config(
        isolated_docker_config,
        {"credHelpers": {HOST: "test"}, "auths": {HOST: {"auth": base64.b64encode(b"not:used").decode()}}},
    )
    with respx.mock() as router:
        router.get(f"{BASE}/v2/a/manifests/v1").mock(side_effect=basic_protected("carol", "s3"))
        OciRegistry(HOST).manifest_get("a", "v1")
    assert seen.read_text().strip() == HOST


def test_creds_store_not_found_falls_back_to_auths(isolated_docker_config: Path, helper_path: Path) -> None:
    fake_helper(helper_path, "store", "echo 'credentials not found in native keychain'\nexit 1\n")
    write_config(
        isolated_docker_config,
        {"credsStore": "store", "auths": {HOST: {"auth": base64.b64encode(b"dave:pw").decode()}}},
    )
    creds = load_credentials(HOST)
    assert creds == Credentials("dave", "pw")


def test_creds_store_token_username_means_identity_token(
    isolated_docker_config: Path, helper_path: Path
) -> None:
    fake_helper(helper_path, "store", 'echo \'{"Username":"<token>","Secret":"idtok"}\'\n')
    write_config(isolated_docker_config, {"credsStore": "store"})
    assert load_credentials(HOST) == Credentials(identity_token="idtok")


def test_missing_or_failing_helper_is_a_config_error(isolated_docker_config: Path, helper_path: Path) -> None:
    write_config(isolated_docker_config, {"credHelpers": {HOST: "absent"}})
    with pytest.raises(ConfigError, match="docker-credential-absent is not on PATH"):
        load_credentials(HOST)
    fake_helper(helper_path, "broken", "echo 'keychain locked' >&2\nexit 1\n")
    write_config(isolated_docker_config, {"credHelpers": {HOST: "broken"}})
    with pytest.raises(ConfigError, match=r"failed for registry\.test: keychain locked"):
        load_credentials(HOST)


def test_config_location_and_docker_hub_key(
    tmp_path: Path, isolated_docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert docker_config_path() == isolated_docker_config / "config.json"
    assert docker_config_path(tmp_path) == tmp_path / "config.json"
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert docker_config_path() == tmp_path / ".docker" / "config.json"
    hub = base64.b64encode(b"hubuser:hubpw").decode()
    write_config(tmp_path / ".docker", {"auths": {"https://index.docker.io/v1/": {"auth": hub}}})
    assert load_credentials("registry-1.docker.io") == Credentials("hubuser", "hubpw")
    assert load_credentials("other.example") is None


def test_malformed_config_is_a_config_error(isolated_docker_config: Path) -> None:
    (isolated_docker_config / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read Docker config"):
        load_credentials(HOST)
    write_config(isolated_docker_config, {"auths": {HOST: {"auth": "bm8tY29sb24="}}})  # "no-colon"
    with pytest.raises(ConfigError, match="not base64 of user:password"):
        load_credentials(HOST)


def test_credentials_repr_hides_secrets() -> None:
    creds = Credentials("user", "topsecret", "idtoken-xyz")
    assert "topsecret" not in repr(creds) and "idtoken-xyz" not in repr(creds)
    assert creds.basic_header() == basic("user", "topsecret")
    assert Credentials(identity_token="t").basic_header() is None


def test_credentials_provider_replaces_docker_config(isolated_docker_config: Path) -> None:
    config: dict[str, object] = {"auths": {HOST: {"auth": base64.b64encode(b"docker:cfg").decode()}}}
    write_config(isolated_docker_config, config)
    issued = iter(["token-1", "token-2"])
    current: list[str] = []

    def provider() -> Credentials:
        if not current:
            current.append(next(issued))
        return Credentials("AWS", current[0])

    with respx.mock() as router:
        route = router.get(f"{BASE}/v2/a/manifests/v1")
        route.mock(side_effect=basic_protected("AWS", "token-1"))
        reg = OciRegistry(HOST, credentials=provider)
        reg.manifest_get("a", "v1")
        current[:] = [next(issued)]  # the provider rotated its token: the next request uses it
        route.mock(side_effect=basic_protected("AWS", "token-2"))
        reg.manifest_get("a", "v1")
    assert route.calls.last.request.headers["Authorization"] == basic("AWS", "token-2")
    assert route.call_count == 3


def test_token_endpoint_hiccups_are_retried_like_any_request() -> None:
    with respx.mock() as router:
        token = router.get(REALM).mock(
            side_effect=[httpx.Response(503), httpx.Response(200, json={"token": "tok"})]
        )
        router.get(f"{BASE}/v2/a/manifests/v1").mock(side_effect=protected("tok", "repository:a:pull"))
        reg = OciRegistry(HOST, backoff=0.001)
        assert reg.manifest_get("a", "v1").digest == DIGEST
    assert token.call_count == 2
    assert reg.stats.requests == 4  # anonymous try, two token requests, the authorised request


def test_token_endpoint_failure_is_unavailable_not_denied() -> None:
    with respx.mock() as router:
        router.get(REALM).mock(return_value=httpx.Response(404))
        router.get(f"{BASE}/v2/a/manifests/v1").mock(side_effect=protected("x", "repository:a:pull"))
        with pytest.raises(RegistryError) as caught:
            OciRegistry(HOST).manifest_get("a", "v1")
    assert not isinstance(caught.value, RegistryDenied) and caught.value.exit_code == 6
    assert caught.value.message.startswith("token request for registry.test failed: GET https://auth.test/")


def test_the_auth_flow_composes_with_any_transport(isolated_docker_config: Path) -> None:
    write_config(isolated_docker_config, {"auths": {HOST: {"auth": base64.b64encode(b"u:p").decode()}}})
    auth = RegistryAuth(BASE)

    def handler(request: httpx.Request) -> httpx.Response:
        return basic_protected("u", "p")(request)

    with httpx.Client(auth=auth, transport=httpx.MockTransport(handler)) as client:
        assert client.get(f"{BASE}/v2/a/manifests/v1").status_code == 200
        assert client.get(f"{BASE}/v2/a/manifests/v1").status_code == 200
    assert auth.challenge is not None and auth.challenge.scheme == "basic"


# -- credentials stay with their origin ------------------------------------------------------------


@pytest.mark.parametrize("other", ["http://elsewhere.test", f"https://{HOST}:8443", f"http://{HOST}"])
def test_a_cross_origin_tag_page_gets_no_basic_credentials(isolated_docker_config: Path, other: str) -> None:
    write_config(isolated_docker_config, {"auths": {HOST: {"auth": base64.b64encode(b"u:pw").decode()}}})

    def first_page(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != basic("u", "pw"):
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        link = f'<{other}/v2/a/tags/list?n=1&last=a>; rel="next"'
        return httpx.Response(200, json={"tags": ["a"]}, headers={"Link": link})

    with respx.mock() as router:
        # registered first: respx matches a URL without a port on any port
        foreign = router.get(f"{other}/v2/a/tags/list", params={"last": "a"}).mock(
            return_value=httpx.Response(200, json={"tags": ["b"]})
        )
        router.get(f"{BASE}/v2/a/tags/list").mock(side_effect=first_page)
        assert OciRegistry(HOST).tag_list("a") == ["a", "b"]
    assert foreign.call_count == 1 and "Authorization" not in foreign.calls.last.request.headers


def test_a_cross_origin_upload_location_gets_no_bearer_token_and_no_answer() -> None:
    data = b"layer"
    digest = Digest.of(data)
    with respx.mock() as router:
        token = router.get(REALM).mock(return_value=httpx.Response(200, json={"token": "tok"}))

        def start(request: httpx.Request) -> httpx.Response:
            if request.headers.get("Authorization") != "Bearer tok":
                return httpx.Response(401, headers=bearer("repository:a:pull,push"))
            return httpx.Response(202, headers={"Location": "https://uploads.test/session/1?sig=abc"})

        router.post(f"{BASE}/v2/a/blobs/uploads/").mock(side_effect=start)
        upload = router.put(url__startswith="https://uploads.test/session/1").mock(
            return_value=httpx.Response(401, headers=bearer("repository:a:push"))
        )
        cancel = router.delete(url__startswith="https://uploads.test/session/1").mock(
            return_value=httpx.Response(204)
        )
        with pytest.raises(RegistryDenied) as caught:
            OciRegistry(HOST).blob_put("a", digest, len(data), [data])
    assert upload.call_count == 1 and "Authorization" not in upload.calls.last.request.headers
    assert "Authorization" not in cancel.calls.last.request.headers
    assert token.call_count == 1  # the foreign 401 was not answered with a token exchange
    assert "sig=***" in caught.value.message and "abc" not in caught.value.message
