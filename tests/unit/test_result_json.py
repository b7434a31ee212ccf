"""Typed service results: `to_json()` gives the JSON shape the commands printed before (a contract:
the same keys, in the same order, with the same values)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from boda.policy.plan import Protection
from boda.registry.base import TagMutability
from boda.services.crane import Resolved, TagList, Untagged
from boda.services.ecr_policy import StoredPolicy
from boda.services.expiry.pins import PinResult
from boda.services.expiry.policy_check import AtRisk, Difference, PolicyCheck, PreviewComparison, RuleAction
from boda.services.keys import KeyFiles, PublicKey
from boda.services.native_retention import MutabilityChange
from boda.types import Digest, Reference

D = Digest.of(b"x")
APP = "shop/web"


def same(data: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal, and printed identically (key order included)."""
    assert json.dumps(data) == json.dumps(expected)


def test_pin_and_unpin() -> None:
    same(
        PinResult(APP, D, True, "audit").to_json(),
        {"app": APP, "digest": str(D), "reason": "audit", "pinned": True},
    )
    same(PinResult(APP, D, False).to_json(), {"app": APP, "digest": str(D), "pinned": False})


def test_policy_check() -> None:
    protection = Protection("current", "current in prd")
    boda_says = AtRisk("r", "sha256:1", ("v1",), RuleAction("expire", 2), (protection,))
    ecr_says = AtRisk("r", "sha256:2", (), RuleAction("transition", None), (protection,), "ecr-preview")
    difference = Difference("sha256:2", RuleAction("transition", None), None)
    check = PolicyCheck(
        APP,
        (boda_says, ecr_says),
        (
            PreviewComparison("r", True, "", 1, 0, (difference,)),
            PreviewComparison("s", False, "not implemented"),
        ),
        ("a note",),
    )
    protections = [{"type": "protection", "protection": "current", "detail": "current in prd"}]
    same(
        check.to_json(),
        {
            "app": APP,
            "violations": [
                {
                    "repository": "r",
                    "digest": "sha256:1",
                    "tags": ["v1"],
                    "action": "expire",
                    "appliedRulePriority": 2,
                    "protections": protections,
                },
                {
                    "repository": "r",
                    "digest": "sha256:2",
                    "tags": [],
                    "action": "transition",
                    "appliedRulePriority": None,
                    "protections": protections,
                    "source": "ecr-preview",
                },
            ],
            "ecr_preview": [
                {
                    "repository": "r",
                    "available": True,
                    "reason": "",
                    "ecr_acts_on": 1,
                    "boda_acts_on": 0,
                    "differences": [
                        {
                            "digest": "sha256:2",
                            "ecr": {"action": "transition", "appliedRulePriority": None},
                            "boda": None,
                        }
                    ],
                },
                {"repository": "s", "available": False, "reason": "not implemented"},
            ],
            "notes": ["a note"],
        },
    )


def test_stored_policy() -> None:
    doc = {"rules": []}
    same(
        StoredPolicy("ecr", "r", None).to_json(),
        {"registry": "ecr", "repository": "r", "policy": None, "rules": []},
    )
    same(
        StoredPolicy("ecr", "r", doc, ("keep 3",)).to_json(),
        {"registry": "ecr", "repository": "r", "policy": doc, "rules": ["keep 3"]},
    )
    same(
        StoredPolicy("ecr", "r", doc, invalid="bad").to_json(),
        {"registry": "ecr", "repository": "r", "policy": doc, "rules": [], "invalid": "bad"},
    )


def test_mutability_change() -> None:
    change = MutabilityChange(
        "r", TagMutability("IMMUTABLE"), TagMutability("IMMUTABLE_WITH_EXCLUSION", ("k-*",))
    )
    same(
        change.to_json(),
        {
            "repository": "r",
            "from": {"mutability": "IMMUTABLE", "filters": []},
            "to": {"mutability": "IMMUTABLE_WITH_EXCLUSION", "filters": ["k-*"]},
        },
    )


def test_crane() -> None:
    ref = Reference.parse("127.0.0.1:5000/shop/web:v1")
    same(
        Resolved(ref, D, "application/vnd.oci.image.manifest.v1+json", None).to_json(),
        {
            "reference": str(ref),
            "digest": str(D),
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": None,
        },
    )
    same(TagList(ref.name, ("ci-2", "ci-10")).to_json(), {"repository": ref.name, "tags": ["ci-2", "ci-10"]})
    same(
        Untagged(ref, "v1", D, False).to_json(),
        {"reference": str(ref), "tag": "v1", "digest": str(D), "image_deleted": False},
    )


def test_keys() -> None:
    same(
        KeyFiles("ed25519", "ab", Path("k.key.pem"), Path("k.pub.pem")).to_json(),
        {"type": "ed25519", "keyid": "ab", "private": "k.key.pem", "public": "k.pub.pem"},
    )
    same(PublicKey("k.key.pem", "ab", "PEM").to_json(), {"key": "k.key.pem", "keyid": "ab", "pem": "PEM"})
