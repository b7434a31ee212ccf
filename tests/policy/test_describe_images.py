"""Reading `aws ecr describe-images` output: the fields, the errors, and the fast path, which accepts
exactly what the strict, message-building path accepts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from boda.errors import PolicyError
from boda.policy import EcrImage
from boda.policy.describe_images import (
    _DECODER,
    _DIGEST,
    _TAG,
    _digests_ok,
    _NotFast,
    _parse_strictly,
    _tags_ok,
    _vouch_for,
    parse_images,
)

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
    st.builds(lambda h: f"sha256:{h}\n", st.text(HEX, min_size=64, max_size=64)),
    # the characters of "sha256:" in another order, then 64 hex digits
    st.builds(
        lambda p, h: "".join(p) + h, st.permutations(list("sha256:")), st.text(HEX, min_size=64, max_size=64)
    ),
    # 71 characters that start with sha256: and hold another "sha256:" among 57 hex digits
    st.builds(
        lambda h, k: f"sha256:{h[:k]}sha256:{h[k:]}",
        st.text(HEX, min_size=57, max_size=57),
        st.integers(0, 57),
    ),
)


@given(st.lists(digests, max_size=4))
def test_digest_check_matches_the_regex(texts: list[str]) -> None:
    assert _digests_ok(texts) == all(_DIGEST.match(text) for text in texts)


tag_texts = st.one_of(
    st.text("aZ09_.-\n é", max_size=6),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "-", "."]), st.integers(298, 302)),
)


@given(st.lists(tag_texts, max_size=4))
def test_tag_check_matches_the_regex(tags: list[str]) -> None:
    assert _tags_ok(tags) == all(_TAG.match(tag) for tag in tags)


@st.composite
def iso_times(draw: st.DrawFn) -> str:
    """RFC 3339 and ISO 8601 forms, from what the AWS CLI writes to the edges of the calendar."""
    year = draw(st.sampled_from([1, 2, 1969, 1970, 2025, 9998, 9999]))
    month, day = draw(st.integers(1, 12)), draw(st.integers(1, 28))
    clock = f"{draw(st.integers(0, 23)):02}:{draw(st.integers(0, 59)):02}:{draw(st.integers(0, 59)):02}"
    fraction = draw(st.sampled_from(["", ".", ".5", ".123", ".123456", ".1234565", ".999999999"]))
    separator = draw(st.sampled_from(["T", "t", " "]))
    offset = draw(st.sampled_from(["", "Z", "z", "+00:00", "-00:00", "+01:00", "-14:00", "+05:30", "+0530"]))
    text = f"{year:04}-{month:02}-{day:02}{separator}{clock}{fraction}{offset}"
    return draw(st.sampled_from([text, text[:10], text[:16] + offset]))


timestamps = st.one_of(
    iso_times(),
    st.integers(-(2**40), 2**40),
    st.floats(min_value=-1e11, max_value=1e11),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**36), 2**36).map(str),
    st.floats(min_value=-1e11, max_value=1e11).map(repr),
    st.sampled_from(["null", "NULL", "", "yesterday", "1e9", "nan", "2025-W47-1", "20251117T212400Z"]),
)
values = st.one_of(
    st.none(),
    st.booleans(),
    timestamps,
    st.sampled_from(
        [
            "",
            "ACTIVE",
            "ARCHIVED",
            "ACTIVATING",
            "v1",
            "sha256:" + "a" * 64,
            "sha512:" + "a" * 128,
            "application/vnd.oci.image.manifest.v1+json",
        ]
    ),
    st.lists(
        st.sampled_from(["v1", "prod-1", "-bad", "", "a" * 300, "a" * 301, "ok.tag_1", "x\ny"]), max_size=3
    ),
    st.lists(st.one_of(st.integers(-(2**63), 2**63 - 1), st.none()), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(-(2**63), 2**63 - 1), max_size=2),
)
FIELDS = [
    "imageDigest",
    "imageTags",
    "imagePushedAt",
    "lastRecordedPullTime",
    "imageStatus",
    "lastArchivedAt",
    "lastActivatedAt",
    "imageManifestMediaType",
    "subjectManifestDigest",
    "children",
]
details = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), values).map(
        lambda d: {"imageDigest": "sha256:" + "b" * 64, "imagePushedAt": 1_700_000_000, **d}
    ),
    st.fixed_dictionaries(
        {"imageDigest": st.just("sha256:" + "b" * 64), "imagePushedAt": timestamps},
        optional={"lastRecordedPullTime": timestamps, "imageTags": st.just(["v1"])},
    ),
)


def fast_path(data: bytes) -> list[EcrImage] | None:
    """The images the fast path vouches for, or None when it hands the document to the strict path."""
    try:
        images = _DECODER.decode(data).imageDetails
        _vouch_for(images)
    except (msgspec.MsgspecError, RecursionError, _NotFast):
        return None
    return images


@example([{"imageDigest": "sha256:" + "b" * 64, "imagePushedAt": 1, "imageStatus": ["v1"]}])
@example([{"imageDigest": "sha256:" + "b" * 64, "imagePushedAt": 1, "imageStatus": {"a": 1}}])
@example([{"imageDigest": "sha256:" + "b" * 64, "imagePushedAt": "0001-01-01T00:00:00+01:00"}])
@example([{"imageDigest": "sha256:" + "b" * 64, "imagePushedAt": 1, "children": ["sha256:" + "c" * 64]}])
@example([{"imageDigest": "sha256:" + "b" * 20 + "sha256:" + "b" * 37, "imagePushedAt": 1}])
@example([{"imageDigest": "sha256:" + "b" * 64, "imagePushedAt": "2025-01-01T00:00:00.1234565Z"}])
@settings(max_examples=500)
@given(st.lists(details, max_size=4))
def test_fast_and_strict_paths_agree(elements: list[dict[str, object]]) -> None:
    # Distinct digests, so that only the per-element checks are being compared.
    for i, element in enumerate(elements):
        if isinstance(element.get("imageDigest"), str) and _DIGEST.match(str(element["imageDigest"])):
            element["imageDigest"] = f"sha256:{i:064x}"
    data = json.dumps({"imageDetails": elements}).encode()
    fast = fast_path(data)
    try:
        strict = _parse_strictly(data)
    except PolicyError as exc:
        assert fast is None, f"the fast path accepted what the strict one refuses: {exc.message}"
        with pytest.raises(PolicyError) as caught:
            parse_images(data)
        assert caught.value.message == exc.message
        return
    if fast is not None:
        assert fast == strict
    images = parse_images(data)
    assert images == strict
    for image in images:
        for when in (image.pushed_at, image.last_pulled_at, image.last_archived_at, image.last_activated_at):
            assert when is None or when.tzinfo is UTC


@pytest.mark.parametrize(
    "when,expected",
    [
        ("2025-11-17T21:24:00+00:00", datetime(2025, 11, 17, 21, 24, tzinfo=UTC)),  # AWS CLI v2
        ("2025-11-17T21:24:00.123000+00:00", datetime(2025, 11, 17, 21, 24, 0, 123000, tzinfo=UTC)),
        ("2025-11-17 21:24:00+00:00", datetime(2025, 11, 17, 21, 24, tzinfo=UTC)),  # str() of boto3's
        ("2025-11-17T21:24:00Z", datetime(2025, 11, 17, 21, 24, tzinfo=UTC)),
        ("2025-11-17T23:24:00.5+02:00", datetime(2025, 11, 17, 21, 24, 0, 500000, tzinfo=UTC)),
        ("2025-11-17T21:24:00", datetime(2025, 11, 17, 21, 24, tzinfo=UTC)),  # no offset: UTC
        (1763414640, datetime(2025, 11, 17, 21, 24, tzinfo=UTC)),  # AWS CLI v1: epoch seconds
        (1763414640.25, datetime(2025, 11, 17, 21, 24, 0, 250000, tzinfo=UTC)),
    ],
)
def test_every_timestamp_form_the_aws_cli_and_boto3_write_takes_the_fast_path(
    when: object, expected: datetime
) -> None:
    data = describe({"imageDigest": DIGEST, "imagePushedAt": when, "lastRecordedPullTime": when})
    fast = fast_path(data)
    assert fast is not None
    assert fast[0].pushed_at == expected and fast[0].pushed_at.tzinfo is UTC
    assert parse_images(data) == fast


@pytest.mark.parametrize(
    "when,expected",
    [
        ("2025-11-17", datetime(2025, 11, 17, tzinfo=UTC)),
        ("2025-11-17T21:24Z", datetime(2025, 11, 17, 21, 24, tzinfo=UTC)),
        ("20251117T212400+01", datetime(2025, 11, 17, 20, 24, tzinfo=UTC)),
    ],
)
def test_other_iso_8601_forms_take_the_strict_path(when: str, expected: datetime) -> None:
    data = describe({"imageDigest": DIGEST, "imagePushedAt": when})
    assert fast_path(data) is None
    assert parse_images(data)[0].pushed_at == expected


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
def test_deeply_nested_json_is_one_line_of_error(data: bytes) -> None:
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
