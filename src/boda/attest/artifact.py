"""The OCI artifact that attaches a DSSE envelope to an image as a referrer (OCI image spec 1.1).

    {
      "schemaVersion": 2,
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "artifactType": "application/vnd.dsse.envelope.v1+json",
      "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:44136f...", "size": 2},
      "layers": [{"mediaType": "application/vnd.dsse.envelope.v1+json", "digest": ENVELOPE, "size": N,
                  "annotations": {"in-toto.io/predicate-type": TYPE}}],
      "subject": {the image's descriptor},
      "annotations": {"in-toto.io/predicate-type": TYPE, "org.opencontainers.image.created": AT,
                      "dev.boda.kind": "tests" | ... | "promotion", "dev.boda.env": ENV}
    }

The envelope media type is the one cosign writes for DSSE attestation layers and that tools
listing referrers recognise; `in-toto.io/predicate-type` is the annotation BuildKit and Docker use
for the predicate of an attestation layer. Annotations are hints for listings only: verification
reads nothing but the signed envelope (its statement names the subject digest itself), so moving
an artifact to another image, or editing its annotations, gains nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from boda.attest.dsse import DSSE_MEDIA_TYPE
from boda.types import OCI_EMPTY, OCI_MANIFEST, Descriptor, Digest, Manifest

ARTIFACT_TYPE = DSSE_MEDIA_TYPE
ANNOTATION_PREDICATE_TYPE = "in-toto.io/predicate-type"
ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_KIND = "dev.boda.kind"
ANNOTATION_ENV = "dev.boda.env"
EMPTY_CONFIG = b"{}"
EMPTY_DESCRIPTOR = Descriptor(OCI_EMPTY, Digest.of(EMPTY_CONFIG), len(EMPTY_CONFIG))


@dataclass(frozen=True)
class Artifact:
    """An envelope ready to push: its bytes (one layer), the empty config, and the manifest."""

    manifest: Manifest
    envelope: bytes
    envelope_descriptor: Descriptor

    @property
    def blobs(self) -> tuple[tuple[Descriptor, bytes], ...]:
        """Every blob the manifest needs, with its bytes."""
        return ((EMPTY_DESCRIPTOR, EMPTY_CONFIG), (self.envelope_descriptor, self.envelope))


def build(
    envelope: bytes, subject: Descriptor, predicate_type: str, annotations: Mapping[str, str]
) -> Artifact:
    """The artifact attaching `envelope` to `subject`."""
    layer = Descriptor(
        DSSE_MEDIA_TYPE, Digest.of(envelope), len(envelope), {ANNOTATION_PREDICATE_TYPE: predicate_type}
    )
    subject_json = {"mediaType": subject.media_type, "digest": str(subject.digest), "size": subject.size}
    data: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": EMPTY_DESCRIPTOR.to_json(),
        "layers": [layer.to_json()],
        "subject": subject_json,
        "annotations": {ANNOTATION_PREDICATE_TYPE: predicate_type, **annotations},
    }
    return Artifact(Manifest.from_bytes(json.dumps(data, separators=(",", ":")).encode()), envelope, layer)


def envelope_layer(manifest: Manifest) -> Descriptor | None:
    """The DSSE envelope layer of an artifact manifest, None when it is not one boda reads."""
    if manifest.is_index or manifest.artifact_type != ARTIFACT_TYPE:
        return None
    layers = [d for d in manifest.layers if d.media_type == DSSE_MEDIA_TYPE]
    return layers[0] if len(layers) == 1 else None


def is_attestation(descriptor: Descriptor) -> bool:
    """True for a referrer descriptor that announces a DSSE envelope artifact (a cheap filter: the
    manifest is still read and checked)."""
    return descriptor.artifact_type in (None, ARTIFACT_TYPE)
