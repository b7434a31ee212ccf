"""Frozen value types: Digest, Reference, Descriptor, Manifest.

Everything that enters boda as a string is parsed here once; the rest of the code passes these
values around. `parse()` and `str()` round-trip. Manifests keep their exact bytes: the digest is
always computed over them, never over re-serialised JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from boda.errors import DigestMismatch, ReferenceError_, UsageError

# Media types boda reads and writes as manifests.
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_TYPES = INDEX_TYPES | IMAGE_TYPES
# Sent on every manifest GET and HEAD: a narrower list makes registry 2.8 answer 404 for OCI
# content or silently resolve a manifest list to its linux/amd64 child.
ACCEPT_MANIFESTS = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])

#: The largest manifest boda reads: 4 MiB, the limit of the distribution registry (and of
#: containers/image, containerd and ECR), so no registry can hold a bigger one boda would need.
MAX_MANIFEST_SIZE = 4 << 20
#: Nesting a manifest may have; real ones have 5 levels (index, manifests, descriptor, platform,
#: os.features), and deeper documents exhaust the recursion of every JSON consumer.
MAX_MANIFEST_DEPTH = 64

OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"

_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"^[a-f0-9]+\Z")
# `\Z`, not `$`: `$` would accept a trailing newline.
TAG_PATTERN = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_DOMAIN = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[a-fA-F0-9:]+\])(?::[0-9]+)?\Z"
)
NAME_MAX = 255
DOCKER_HUB = "registry-1.docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", DOCKER_HUB})


@dataclass(frozen=True, order=True)
class Digest:
    """A content digest `algorithm:hex` (sha256 or sha512, lower-case hex of the right length)."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse `sha256:<64 hex>` or `sha512:<128 hex>`; anything else is a ReferenceError_."""
        algorithm, sep, hexpart = text.partition(":")
        if not sep:
            raise ReferenceError_(f"invalid digest {text!r}: expected ALGORITHM:HEX")
        expected = _HEX_LENGTHS.get(algorithm)
        if expected is None:
            raise ReferenceError_(f"invalid digest {text!r}: algorithm must be sha256 or sha512")
        if len(hexpart) != expected or not _HEX.match(hexpart):
            raise ReferenceError_(
                f"invalid digest {text!r}: {algorithm} needs {expected} lower-case hex digits"
            )
        return cls(algorithm, hexpart)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of `data`."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> Any:
        """A fresh hashlib object of this digest's algorithm, for streaming verification."""
        return hashlib.new(self.algorithm)

    @property
    def short(self) -> str:
        """The first 12 hex digits, for people."""
        return self.hex[:12]

    @property
    def tag_form(self) -> str:
        """`sha256-<hex>`: the referrers fallback tag and the cosign tag prefix."""
        return f"{self.algorithm}-{self.hex}"

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def is_digest(text: str) -> bool:
    """True when `text` parses as a digest."""
    try:
        Digest.parse(text)
    except ReferenceError_:
        return False
    return True


def validate_tag(tag: str) -> str:
    """Return `tag` if it follows the distribution tag grammar, else raise ReferenceError_."""
    if not TAG_PATTERN.match(tag):
        raise ReferenceError_(
            f"invalid tag {tag!r}: up to 128 characters of letters, digits, '_', '.' and '-',"
            " not starting with '.' or '-'"
        )
    return tag


def validate_repository(name: str) -> str:
    """Return `name` if it is a valid repository path (lower case, components and separators)."""
    if not name:
        raise ReferenceError_("invalid repository name: it is empty")
    if name != name.lower() and _PATH_COMPONENT.match("/".join(name.lower().split("/"))):
        raise ReferenceError_(f"invalid repository name {name!r}: it must be lower case")
    for component in name.split("/"):
        if not _PATH_COMPONENT.match(component):
            raise ReferenceError_(
                f"invalid repository name {name!r}: component {component!r} must be lower-case"
                " letters and digits separated by '.', '_', '__' or '-'"
            )
    if len(name) > NAME_MAX:
        raise ReferenceError_(f"invalid repository name: longer than {NAME_MAX} characters")
    return name


@dataclass(frozen=True)
class Reference:
    """An image reference `registry/repository[:tag][@digest]`.

    `registry` is `host[:port]` (Docker Hub normalised to `registry-1.docker.io`, its single-name
    repositories under `library/`), or `oci-layout:ROOT` for an OCI layout on disk, written
    `oci-layout:ROOT:repository[:tag][@digest]` (ROOT may not contain ':').
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse a reference; raise ReferenceError_ with the reason when it is malformed."""
        if not text or text != text.strip():
            raise ReferenceError_(f"invalid reference {text!r}: empty or surrounded by spaces")
        if text.startswith(LAYOUT_SCHEME):
            root, sep, rest = text[len(LAYOUT_SCHEME) :].partition(":")
            if not sep or not root or not rest:
                raise ReferenceError_(
                    f"invalid reference {text!r}: expected oci-layout:ROOT:REPOSITORY[:TAG][@DIGEST]"
                )
            inner = cls._parse_remote(rest, text, default_registry=LAYOUT_SCHEME + root)
            return inner
        if "://" in text:
            raise ReferenceError_(
                f"invalid reference {text!r}: write host/repository:tag without a URL scheme"
            )
        return cls._parse_remote(text, text, default_registry=None)

    @classmethod
    def _parse_remote(cls, text: str, original: str, *, default_registry: str | None) -> Reference:
        name, at, digest_text = text.partition("@")
        digest = None
        if at:
            try:
                digest = Digest.parse(digest_text)
            except ReferenceError_ as exc:
                raise ReferenceError_(f"invalid reference {original!r}: {exc.message}") from exc
        tag = None
        last_slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > last_slash:
            name, tag = name[:colon], name[colon + 1 :]
            try:
                validate_tag(tag)
            except ReferenceError_ as exc:
                raise ReferenceError_(f"invalid reference {original!r}: {exc.message}") from exc
        if default_registry is not None:
            registry, repository = default_registry, name
        else:
            first, slash, remainder = name.partition("/")
            if slash and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
                if not _DOMAIN.match(first):
                    raise ReferenceError_(f"invalid reference {original!r}: bad registry host {first!r}")
                registry, repository = first, remainder
            else:
                registry, repository = DOCKER_HUB, name
            if registry in _DOCKER_HUB_ALIASES:
                registry = DOCKER_HUB
                if "/" not in repository:
                    repository = f"library/{repository}"
        try:
            validate_repository(repository)
        except ReferenceError_ as exc:
            raise ReferenceError_(f"invalid reference {original!r}: {exc.message}") from exc
        if default_registry is None and len(f"{registry}/{repository}") > NAME_MAX:
            raise ReferenceError_(f"invalid reference {original!r}: name longer than {NAME_MAX}")
        return cls(registry, repository, tag, digest)

    @property
    def identifier(self) -> str:
        """What to ask the registry for: the digest when there is one, else the tag ('latest')."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or "latest"

    @property
    def is_layout(self) -> bool:
        """True for an OCI layout reference."""
        return self.registry.startswith(LAYOUT_SCHEME)

    def with_tag(self, tag: str | None) -> Reference:
        """The same repository with another tag and no digest."""
        return Reference(self.registry, self.repository, validate_tag(tag) if tag else None, None)

    def with_digest(self, digest: Digest) -> Reference:
        """The same repository pinned to `digest` (no tag)."""
        return Reference(self.registry, self.repository, None, digest)

    @property
    def name(self) -> str:
        """`registry/repository` (layout: `oci-layout:ROOT:repository`)."""
        sep = ":" if self.is_layout else "/"
        return f"{self.registry}{sep}{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


LAYOUT_SCHEME = "oci-layout:"


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False)
    artifact_type: str | None = None
    platform: Mapping[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Descriptor:
        """Build from a descriptor object of a manifest (raises ReferenceError_ if malformed)."""
        try:
            size = data["size"]
            media_type = data.get("mediaType", "")
            if not isinstance(size, int) or size < 0 or not isinstance(media_type, str):
                raise TypeError
            return cls(
                media_type=media_type,
                digest=Digest.parse(data["digest"]),
                size=size,
                annotations=dict(data.get("annotations") or {}),
                artifact_type=data.get("artifactType"),
                platform=data.get("platform"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ReferenceError_(f"malformed descriptor in manifest: {data!r:.200}") from exc

    def to_json(self) -> dict[str, Any]:
        """The descriptor as a JSON object."""
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.platform:
            out["platform"] = dict(self.platform)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class Manifest:
    """A manifest's exact bytes, its media type and the digest of those bytes."""

    raw: bytes
    media_type: str
    digest: Digest

    @classmethod
    def from_bytes(
        cls, raw: bytes, media_type: str | None = None, *, expected: Digest | None = None
    ) -> Manifest:
        """Wrap `raw`; the media type comes from the JSON `mediaType` field when absent.

        With `expected`, bytes that do not hash to it raise DigestMismatch. Bytes that are no
        manifest (not a JSON object, larger than MAX_MANIFEST_SIZE, nested deeper than
        MAX_MANIFEST_DEPTH, an unsupported media type) raise ReferenceError_; the registry
        backends report that as a registry failure.
        """
        if len(raw) > MAX_MANIFEST_SIZE:
            raise ReferenceError_(
                f"a manifest of {len(raw)} bytes is larger than the {MAX_MANIFEST_SIZE >> 20} MiB limit"
            )
        algorithm = expected.algorithm if expected is not None else "sha256"
        digest = Digest.of(raw, algorithm)
        if expected is not None and digest != expected:
            raise DigestMismatch(
                f"manifest content hashes to {digest}, not the requested {expected}",
                hint="the registry or a proxy changed the manifest bytes; refusing to use them",
            )
        manifest = cls(raw, "", digest)
        declared = manifest.json.get("mediaType")
        chosen = declared if isinstance(declared, str) and declared else (media_type or "")
        if not chosen:
            chosen = OCI_INDEX if "manifests" in manifest.json else OCI_MANIFEST
        chosen = chosen.split(";")[0].strip()
        if chosen not in MANIFEST_TYPES:
            raise ReferenceError_(f"unsupported manifest media type {chosen!r}")
        object.__setattr__(manifest, "media_type", chosen)
        return manifest

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Manifest:
        """Serialise `data` once (compact, key order kept) and wrap the bytes."""
        return cls.from_bytes(json.dumps(data, separators=(",", ":")).encode())

    @cached_property
    def json(self) -> dict[str, Any]:
        """The parsed JSON document (read-only use)."""
        try:
            data = json.loads(self.raw)
        except RecursionError as exc:
            raise ReferenceError_(
                f"manifest {self.digest} is nested more than {MAX_MANIFEST_DEPTH} levels deep"
            ) from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise ReferenceError_(f"manifest {self.digest} is not valid JSON") from exc
        if not isinstance(data, dict):
            raise ReferenceError_(f"manifest {self.digest} is not a JSON object")
        if depth_exceeds(data, MAX_MANIFEST_DEPTH):
            raise ReferenceError_(
                f"manifest {self.digest} is nested more than {MAX_MANIFEST_DEPTH} levels deep"
            )
        return data

    @property
    def is_index(self) -> bool:
        """True for an OCI index or Docker manifest list."""
        return self.media_type in INDEX_TYPES

    @property
    def size(self) -> int:
        """Size in bytes of the raw manifest."""
        return len(self.raw)

    def descriptor(self, annotations: Mapping[str, str] | None = None) -> Descriptor:
        """A descriptor pointing at this manifest."""
        return Descriptor(
            self.media_type, self.digest, self.size, dict(annotations or {}), self.artifact_type
        )

    @property
    def children(self) -> list[Descriptor]:
        """Manifests an index points to (empty for an image manifest)."""
        if not self.is_index:
            return []
        return [Descriptor.from_json(d) for d in self.json.get("manifests") or []]

    @property
    def config(self) -> Descriptor | None:
        """The config blob of an image manifest."""
        cfg = self.json.get("config")
        return Descriptor.from_json(cfg) if isinstance(cfg, dict) and not self.is_index else None

    @property
    def layers(self) -> list[Descriptor]:
        """The layer blobs of an image manifest."""
        if self.is_index:
            return []
        return [Descriptor.from_json(d) for d in self.json.get("layers") or []]

    @property
    def blobs(self) -> list[Descriptor]:
        """Config first, then layers: every blob an image manifest needs."""
        cfg = self.config
        return ([cfg] if cfg else []) + self.layers

    @property
    def subject(self) -> Descriptor | None:
        """The manifest this one refers to (signatures, SBOMs, attestations)."""
        subj = self.json.get("subject")
        return Descriptor.from_json(subj) if isinstance(subj, dict) else None

    @property
    def artifact_type(self) -> str | None:
        """`artifactType`, else the config media type for non-image artifacts (OCI rule)."""
        declared = self.json.get("artifactType")
        if isinstance(declared, str) and declared:
            return declared
        cfg = self.config
        if cfg is not None and cfg.media_type not in (
            OCI_CONFIG,
            "application/vnd.docker.container.image.v1+json",
        ):
            return cfg.media_type
        return None

    @property
    def annotations(self) -> dict[str, str]:
        """Manifest-level annotations."""
        ann = self.json.get("annotations")
        return dict(ann) if isinstance(ann, dict) else {}


# Commits, by two rules. What is stored names a commit by its full SHA (SHA-1: 40 hex digits,
# SHA-256: 64), never by a prefix: a prefix that is unique today may not be tomorrow. What is
# looked up may be a prefix of at least MIN_PREFIX digits, as git abbreviates (a full SHA is one).
#: The fewest digits of a commit a lookup takes.
MIN_PREFIX = 7
#: A commit as stored: its full lower-case SHA.
FULL_COMMIT_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")
#: A commit as looked up: MIN_PREFIX to 64 lower-case hex digits.
COMMIT_PREFIX = re.compile(rf"^[0-9a-f]{{{MIN_PREFIX},64}}\Z")

# Free text a person gives (a reason, who acts, a URL): what boda stores and prints of it.
#: Characters that could forge a row or rewrite a terminal: C0 and C1 controls, DEL, line and
#: paragraph separators, bidirectional overrides and isolates; and lone surrogates (what a command
#: line in another encoding than UTF-8 decodes to), which no terminal can be sent. Text output
#: shows them escaped.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
#: The longest free text accepted (`--reason`, `--by`, a pin's reason): longer is a paste gone wrong.
MAX_TEXT = 1_000
#: The longest URL accepted (`--url`): what browsers, proxies and CI systems reliably carry.
MAX_URL = 2_048
# An absolute URL of printable characters: no space, control character or lone surrogate.
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[\x21-\x7e\u00a0-\ud7ff\ue000-\U0010ffff]+\Z")
_SHOWN = 60


def text_problem(text: str) -> str | None:
    """Why `text` is not text boda can store (a NUL; a lone surrogate, which is what a command line
    in another encoding than UTF-8 decodes to), else None."""
    if "\x00" in text:
        return f"a NUL character at position {text.index(chr(0))}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"U+{ord(text[exc.start]):04X} at position {exc.start}, which is not text"
            " (was it written in another encoding than UTF-8?)"
        )
    return None


def excerpt(text: str) -> str:
    """`text` for an error line: at most 60 characters, non-ASCII escaped."""
    return ascii(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def check_free_text(value: str, what: str, *, limit: int = MAX_TEXT) -> str:
    """`value` if it is free text boda accepts: valid Unicode without NUL, at most `limit`
    characters; else UsageError naming `what` (e.g. `--reason`). Control characters are kept (the
    text output escapes them)."""
    if not isinstance(value, str):
        raise UsageError(f"{what} must be text, not {type(value).__name__}")
    problem = text_problem(value)
    if problem is not None:
        raise UsageError(f"{what} {excerpt(value)} contains {problem}")
    if len(value) > limit:
        raise UsageError(f"{what} is {len(value):,} characters long: at most {limit:,} are accepted")
    return value


def check_url(value: str, what: str = "URL") -> str:
    """`value` if it is an absolute URL of at most MAX_URL printable characters; else UsageError."""
    check_free_text(value, what, limit=MAX_URL)
    if not _URL.match(value) or CONTROL_CHARACTERS.search(value):
        raise UsageError(
            f"invalid {what} {excerpt(value)}: expected an absolute URL without spaces or control characters"
        )
    return value


#: The outcomes evidence can record.
EVIDENCE_RESULTS = ("pass", "fail")
_EVIDENCE_KIND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


def validate_evidence_kind(kind: str) -> str:
    """Return `kind` if it is a well-formed evidence kind (`tests`, `signoff`, `scan`, ...)."""
    if not isinstance(kind, str) or not _EVIDENCE_KIND.match(kind):
        raise ReferenceError_(
            f"invalid evidence kind {kind!r}: letters, digits, '_', '.' and '-', at most 64"
        )
    return kind


def depth_exceeds(data: object, limit: int) -> bool:
    """True when `data` nests lists and objects more than `limit` levels deep (no recursion)."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
