"""The fast path of parse_images accepts exactly what the strict, message-building path accepts."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from boda.errors import PolicyError
from boda.policy.images import _DIGEST, _digest_ok, _strict_image, parse_images

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
