"""Reading `aws ecr describe-images` output: the fields, the errors, and the fast path, which accepts
exactly what the strict, message-building path accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from boda.errors import PolicyError
from boda.policy.describe_images import _DIGEST, _digest_ok, _strict_image, parse_images

DIGEST = "sha256:" + "a" * 64

HEX = "0123456789abcdef"
digests = st.one_of(
    st.builds(lambda h: f"sha256:{h}", st.text(HEX, min_size=64, max_size=64)),
    st.builds(lambda h: f"sha512:{h}", st.text(HEX, min_size=128, max_size=128)),
    st.text(max_size=80),
    st.builds(
        lambda a, h: f"{a}:{h}",
        st.sampled_from(["sha256", "sha512", "sha384", "SHA256"]),
        st.text(HEX + "AG\n ", min_size=60, max_size=130),
    ),
)


@given(digests)
def test_digest_check_matches_the_regex(text: str) -> None:
    assert _digest_ok(text) == bool(_DIGEST.match(text))


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2_000_000_000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00",
            "yesterday",
            "",
            "ACTIVE",
            "ARCHIVED",
            "v1",
            "sha256:" + "a" * 64,
            "application/vnd.oci.image.manifest.v1+json",
        ]
    ),
    st.lists(st.sampled_from(["v1", "prod-1", "-bad", "", "a" * 129, "ok.tag_1"]), max_size=3),
    # 64-bit integers: orjson reads larger ones as floats, which would change the quoted value.
    st.lists(st.one_of(st.integers(-(2**63), 2**63 - 1), st.none()), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(-(2**63), 2**63 - 1), max_size=2),
)
details = st.dictionaries(
    st.sampled_from(
        [
            "imageDigest",
            "imageTags",
            "imagePushedAt",
            "lastRecordedPullTime",
            "imageStatus",
            "lastArchivedAt",
            "lastActivatedAt",
            "imageManifestMediaType",
            "subjectManifestDigest",
        ]
    ),
    values,
).map(lambda d: {"imageDigest": "sha256:" + "b" * 64, "imagePushedAt": 1_700_000_000, **d})


@example([{"imageDigest": "sha256:" + "b" * 64, "imagePushedAt": 1, "imageStatus": ["v1"]}])
@example([{"imageDigest": "sha256:" + "b" * 64, "imagePushedAt": 1, "imageStatus": {"a": 1}}])
@settings(max_examples=300)
@given(st.lists(details, max_size=4))
def test_fast_and_strict_paths_agree(elements: list[dict[str, object]]) -> None:
    # Distinct digests, so that only the per-element checks are being compared.
    for i, element in enumerate(elements):
        if isinstance(element.get("imageDigest"), str) and _DIGEST.match(str(element["imageDigest"])):
            element["imageDigest"] = f"sha256:{i:064x}"
    data = json.dumps({"imageDetails": elements}).encode()
    try:
        expected = [_strict_image(i, e) for i, e in enumerate(elements)]
    except PolicyError as exc:
        with pytest.raises(PolicyError) as caught:
            parse_images(data)
        assert caught.value.message == exc.message
        return
    assert parse_images(data) == expected


def describe(*details: dict[str, Any]) -> bytes:
    return json.dumps({"imageDetails": list(details)}).encode()


def test_parse_images_reads_describe_images_output() -> None:
    other = "sha256:" + "b" * 64
    images = parse_images(
        describe(
            {
                "registryId": "123456789012",
                "repositoryName": "app",
                "imageDigest": DIGEST,
                "imageTags": ["v1", "latest"],
                "imageSizeInBytes": 1234,
                "imagePushedAt": "2025-01-02T03:04:05.500000+01:00",
                "lastRecordedPullTime": 1735000000.25,
                "imageStatus": "ARCHIVED",
                "lastArchivedAt": 1735000000,
                "lastActivatedAt": "2025-02-01T00:00:00",
                "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
                "subjectManifestDigest": other,
            },
            {"imageDigest": other, "imagePushedAt": 1700000000},
        )
    )
    first, second = images
    assert first.tags == ("v1", "latest")
    assert first.pushed_at.isoformat() == "2025-01-02T02:04:05.500000+00:00"
    assert first.last_pulled_at is not None and first.last_pulled_at.timestamp() == 1735000000.25
    assert first.status == "ARCHIVED" and first.storage_class == "ARCHIVE"
    assert (
        first.last_activated_at is not None
        and first.last_activated_at.isoformat() == "2025-02-01T00:00:00+00:00"
    )
    assert first.subject == other
    assert first.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert second.tags == () and second.status == "ACTIVE" and second.storage_class == "STANDARD"
    assert second.pushed_at.timestamp() == 1700000000


@pytest.mark.parametrize(
    "data,expected",
    [
        (b"{", "images: not valid JSON"),
        (b"[]", 'images: expected a JSON object with an "imageDetails" list'),
        (describe("x"), "imageDetails[0]: not a JSON object"),
        (describe({"imagePushedAt": 1}), "imageDetails[0].imageDigest: not a sha256 or sha512 digest"),
        (describe({"imageDigest": "sha256:abc", "imagePushedAt": 1}), "imageDetails[0].imageDigest: not a"),
        (describe({"imageDigest": DIGEST}), "imageDetails[0].imagePushedAt: missing"),
        (
            describe({"imageDigest": DIGEST, "imagePushedAt": "yesterday"}),
            "imageDetails[0].imagePushedAt: not a timestamp",
        ),
        (
            describe({"imageDigest": DIGEST, "imagePushedAt": True}),
            "imageDetails[0].imagePushedAt: not a timestamp",
        ),
        (
            describe({"imageDigest": DIGEST, "imagePushedAt": 1e300}),
            "imageDetails[0].imagePushedAt: not a timestamp",
        ),
        (
            describe({"imageDigest": DIGEST, "imagePushedAt": 1, "lastRecordedPullTime": []}),
            "imageDetails[0].lastRecordedPullTime: not a timestamp",
        ),
        (
            describe({"imageDigest": DIGEST, "imagePushedAt": 1, "imageTags": "v1"}),
            "imageDetails[0].imageTags: not a list",
        ),
        (
            describe({"imageDigest": DIGEST, "imagePushedAt": 1, "imageTags": ["ok", "bad\ntag"]}),
            "imageDetails[0].imageTags[1]: invalid tag",
        ),
        (
            describe({"imageDigest": DIGEST, "imagePushedAt": 1, "imageStatus": "GONE"}),
            "imageDetails[0].imageStatus: 'GONE' is not ACTIVE, ARCHIVED or ACTIVATING",
        ),
        (
            describe({"imageDigest": DIGEST, "imagePushedAt": 1, "subjectManifestDigest": "x"}),
            "imageDetails[0].subjectManifestDigest: not a sha256 or sha512 digest",
        ),
        (
            describe({"imageDigest": DIGEST, "imagePushedAt": 1, "imageManifestMediaType": 3}),
            "imageDetails[0].imageManifestMediaType: not a string",
        ),
        (
            describe(
                {"imageDigest": DIGEST, "imagePushedAt": 1}, {"imageDigest": DIGEST, "imagePushedAt": 2}
            ),
            f"imageDetails[1].imageDigest: {DIGEST} appears twice",
        ),
    ],
)
def test_parse_images_errors(data: bytes, expected: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_images(data)
    assert expected in info.value.message
    assert "\n" not in info.value.message


@pytest.mark.parametrize("loads", ["orjson", "json"])
@pytest.mark.parametrize(
    "data",
    [
        b'{"imageDetails": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"imageDetails": [{"imageDigest": "'
        + DIGEST.encode()
        + b'", "imagePushedAt": 1, "x": '
        + b'{"a": ' * 50_000
        + b"1"
        + b"}" * 50_000
        + b"}]}",
    ],
    ids=["nested-list", "nested-unknown-field"],
)
def test_deeply_nested_json_is_one_line_of_error(
    data: bytes, loads: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if loads == "json":
        monkeypatch.setattr("boda.policy.describe_images._loads", json.loads)
    with pytest.raises(PolicyError) as info:
        parse_images(data)
    assert info.value.message.startswith("images: not valid JSON") and "\n" not in info.value.message


def test_tags_up_to_ecrs_300_characters_are_accepted() -> None:
    """ECR's API takes tags of up to 300 characters, although Docker's grammar stops at 128."""
    longest = "t" * 300
    [image] = parse_images(describe({"imageDigest": DIGEST, "imagePushedAt": 1, "imageTags": [longest]}))
    assert image.tags == (longest,)
    with pytest.raises(PolicyError, match=r"imageTags\[0\]: invalid tag 't{301}': up to 300 characters"):
        parse_images(describe({"imageDigest": DIGEST, "imagePushedAt": 1, "imageTags": ["t" * 301]}))
