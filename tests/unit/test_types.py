"""Value types: parse/str round trips and clear errors."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boda.errors import DigestMismatch, ReferenceError_
from boda.types import DOCKER_HUB, OCI_INDEX, OCI_MANIFEST, Digest, Manifest, Reference

HEX64 = "a" * 64


def test_digest_round_trip_and_of() -> None:
    d = Digest.parse(f"sha256:{HEX64}")
    assert str(d) == f"sha256:{HEX64}"
    assert Digest.of(b"x") == Digest("sha256", hashlib.sha256(b"x").hexdigest())
    assert Digest.parse("sha512:" + "b" * 128).algorithm == "sha512"
    assert d.tag_form == f"sha256-{HEX64}"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256",
        f"md5:{HEX64}",
        "sha256:abc",
        f"sha256:{HEX64.upper()}",
        "sha512:" + "a" * 64,
        f"sha256:{'g' * 64}",
        f"sha256:{HEX64}0",
    ],
)
def test_digest_rejects(text: str) -> None:
    with pytest.raises(ReferenceError_) as err:
        Digest.parse(text)
    assert "\n" not in err.value.message and "digest" in err.value.message


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("ubuntu", DOCKER_HUB, "library/ubuntu", None, None),
        ("docker.io/ubuntu:22.04", DOCKER_HUB, "library/ubuntu", "22.04", None),
        ("index.docker.io/foo/bar", DOCKER_HUB, "foo/bar", None, None),
        ("127.0.0.1:5000/demo/app:v1", "127.0.0.1:5000", "demo/app", "v1", None),
        ("localhost/app", "localhost", "app", None, None),
        (f"ghcr.io/o/r@sha256:{HEX64}", "ghcr.io", "o/r", None, f"sha256:{HEX64}"),
        (f"ghcr.io/o/r:t@sha256:{HEX64}", "ghcr.io", "o/r", "t", f"sha256:{HEX64}"),
        ("[::1]:5000/a/b:c", "[::1]:5000", "a/b", "c", None),
        ("oci-layout:/tmp/reg:foo/bar:v1", "oci-layout:/tmp/reg", "foo/bar", "v1", None),
        (
            "registry.example.com/a__b/c-d/e.f:x_Y.1-2",
            "registry.example.com",
            "a__b/c-d/e.f",
            "x_Y.1-2",
            None,
        ),
    ],
)
def test_reference_parse(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)
    assert (str(ref.digest) if ref.digest else None) == digest
    assert Reference.parse(str(ref)) == ref


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ubuntu",
        "UPPER/case",
        "host.io/Foo",
        "foo//bar",
        "foo/bar:",
        "foo/bar:-tag",
        "foo/bar@sha256:xyz",
        "http://host/foo",
        "foo/bar:" + "t" * 129,
        "a/" + "b" * 260,
        "foo/bar:v1\n",
        "foo/bar\n:v1",
        "host.io\n/foo",
        f"foo@sha256:{HEX64}\n",
        "foo/-bar",
        "oci-layout:/x",
        "oci-layout::a",
    ],
)
def test_reference_rejects(text: str) -> None:
    with pytest.raises(ReferenceError_) as err:
        Reference.parse(text)
    assert "\n" not in err.value.message


@given(
    st.sampled_from(["127.0.0.1:5000", "ghcr.io", "reg.example.com:443"]),
    st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}", fullmatch=True),
    st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)),
)
def test_reference_round_trip_property(registry: str, repo: str, tag: str | None) -> None:
    text = f"{registry}/{repo}" + (f":{tag}" if tag else "")
    ref = Reference.parse(text)
    assert str(ref) == text
    assert Reference.parse(str(ref)) == ref


def test_manifest_digest_is_over_exact_bytes() -> None:
    raw = b'{"schemaVersion": 2, "mediaType": "%s", "config": {}, "layers": []}' % OCI_MANIFEST.encode()
    m = Manifest.from_bytes(raw)
    assert m.digest == Digest.of(raw) and m.media_type == OCI_MANIFEST and m.raw == raw
    compact = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    assert Manifest.from_bytes(compact).digest != m.digest


def test_manifest_mismatch_rejected() -> None:
    raw = b'{"schemaVersion":2,"mediaType":"%s","manifests":[]}' % OCI_INDEX.encode()
    with pytest.raises(DigestMismatch):
        Manifest.from_bytes(raw, expected=Digest.of(b"other"))
    assert Manifest.from_bytes(raw, expected=Digest.of(raw)).is_index


def test_manifest_media_type_from_header_and_unsupported() -> None:
    raw = (
        b'{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:%s","size":1},"layers":[]}'
        % HEX64.encode()
    )
    assert Manifest.from_bytes(raw, OCI_MANIFEST + "; charset=utf-8").media_type == OCI_MANIFEST
    with pytest.raises(ReferenceError_):
        Manifest.from_bytes(
            b'{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}'
        )
    with pytest.raises(ReferenceError_):
        _ = Manifest.from_bytes(b"[1,2]", OCI_MANIFEST).json


def test_manifest_larger_than_the_limit_is_refused() -> None:
    from boda.types import MAX_MANIFEST_SIZE

    padding = b" " * (MAX_MANIFEST_SIZE - 50)
    raw = b'{"schemaVersion":2,"manifests":[]' + padding + b"}"
    assert len(raw) <= MAX_MANIFEST_SIZE and Manifest.from_bytes(raw).is_index
    with pytest.raises(ReferenceError_, match=r"larger than the 4 MiB limit") as caught:
        Manifest.from_bytes(raw + b" " * 64)
    assert "\n" not in caught.value.message


@pytest.mark.parametrize("depth", [65, 5_000, 200_000])
def test_deeply_nested_manifest_is_one_clear_error(depth: int) -> None:
    raw = b'{"schemaVersion":2,"mediaType":"%s","manifests":[],"x":%s%s}' % (
        OCI_INDEX.encode(),
        b"[" * (depth - 1),
        b"]" * (depth - 1),
    )
    with pytest.raises(ReferenceError_, match="nested more than 64 levels deep") as caught:
        Manifest.from_bytes(raw)
    assert caught.value.__cause__ is None or isinstance(caught.value.__cause__, RecursionError)
    ok = b'{"schemaVersion":2,"mediaType":"%s","manifests":[],"x":%s%s}' % (
        OCI_INDEX.encode(),
        b"[" * 63,
        b"]" * 63,
    )
    assert Manifest.from_bytes(ok).is_index


@pytest.mark.parametrize("entry", [b"1", b"[]", b'{"digest":"x","size":1}', b'{"annotations":[1],"size":1}'])
def test_malformed_child_descriptor_is_a_reference_error(entry: bytes) -> None:
    raw = b'{"schemaVersion":2,"mediaType":"%s","manifests":[%s]}' % (OCI_INDEX.encode(), entry)
    with pytest.raises(ReferenceError_, match="malformed descriptor") as caught:
        _ = Manifest.from_bytes(raw).children
    assert caught.value.__cause__ is not None


def test_tags_sort_naturally() -> None:
    from boda.services.crane import natural_key

    tags = ["ci-10", "ci-2", "ci-1", "v1.10.0", "v1.9.2", "latest", "01", "1"]
    assert sorted(tags, key=natural_key) == [
        "01",
        "1",
        "ci-1",
        "ci-2",
        "ci-10",
        "latest",
        "v1.9.2",
        "v1.10.0",
    ]


def test_two_commit_rules_a_full_sha_stored_a_prefix_looked_up() -> None:
    from boda.services.context import check_commit, check_full_commit
    from boda.types import COMMIT_PREFIX, FULL_COMMIT_SHA, MIN_PREFIX

    sha1, sha256 = "a" * 40, "b" * 64
    assert MIN_PREFIX == 7
    for full in (sha1, sha256):
        assert FULL_COMMIT_SHA.match(full) and COMMIT_PREFIX.match(full)
        assert check_full_commit(full.upper()) == full == check_commit(f" {full} ")
    for prefix in ("abc1234", "a" * 39, "a" * 41, "a" * 63):
        assert COMMIT_PREFIX.match(prefix) and not FULL_COMMIT_SHA.match(prefix)
        assert check_commit(prefix) == prefix
        with pytest.raises(ReferenceError_, match="full SHA"):
            check_full_commit(prefix)
    for bad in ("abc123", "a" * 65, "g" * 40, sha1 + "\n", "", "ABC1234"):
        assert not COMMIT_PREFIX.match(bad)
    with pytest.raises(ReferenceError_, match="7 to 64"):
        check_commit("abc123")


def test_free_text_and_urls_one_rule() -> None:
    from boda.errors import UsageError
    from boda.types import MAX_TEXT, MAX_URL, check_free_text, check_url

    assert (
        check_free_text("line one\nline two \x1b[2J", "r") == "line one\nline two \x1b[2J"
    )  # escaped when shown
    assert check_free_text("é" * MAX_TEXT, "r") == "é" * MAX_TEXT
    for bad, message in [
        ("x" * (MAX_TEXT + 1), "1,001 characters long"),
        ("ok \udcff", r"U\+DCFF at position 3, which is not text"),
        ("nul \x00", "a NUL character at position 4"),
    ]:
        with pytest.raises(UsageError, match=message):
            check_free_text(bad, "r")
    url = "https://ci.example/é/" + "a" * (MAX_URL - 21)
    assert len(url) == MAX_URL and check_url(url) == url
    for bad in (
        url + "a",
        "https://ci/\udcff",
        "https://ci/a b",
        "https://ci/\u202eevil",
        "ci/run",
        "https://ci/\x1b",
    ):
        with pytest.raises(UsageError):
            check_url(bad)
