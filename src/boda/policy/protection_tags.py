"""Protection tags: the tags boda keeps on every image it protects when ECR's own lifecycle policy is
what deletes images (`[retention] mode = "native"`). Pure: no I/O.

The scheme (`prefix` is `[retention] protection_prefix`, "keep-" by default; `HEX` the first 12 hex
digits of the image's digest):

    keep-<env>-<HEX>    current in environment <env>, or in its rollback window
    keep-pin-<HEX>      pinned
    keep-run-<HEX>      run, deployed or kept for a rollback by a configured runtime
    keep-untag-<HEX>    transient: the last tag of an image the untag flow is stripping

Every name is bound to one digest and never moves to another image: protecting an image adds a tag,
releasing it removes one. So every protected image holds a protection tag at every moment (the new
tags are added before any stale one is removed, and an interrupted sync leaves only extra tags), the
names work in repositories whose tags are immutable, and the same state always gives the same tags
(a sync is idempotent). Slot names such as `keep-prd-1` would instead have to move between images at
each promotion, leaving a moment (or, after a crash, a state) where an image in a window holds none.

Names stay inside the distribution tag grammar ECR enforces (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`):
a prefix of at most 32 characters, an environment name of at most 63, a dash and 12 hex digits.

What the labels cover is closed over the image graph, as boda's own expiry plan is: the children of a
protected index and the referrers of a protected image carry its labels, and so does the subject of a
protected referrer (ECR expires a referrer with its subject). ECR documents that an image listed by a
manifest list is not expired before the list and that referrers go with their subject; the tags make
that hold whatever ECR's graph handling does (its guard is reported unreliable), and they are what
keeps tag-based signatures (`sha256-<hex>.sig`), which ECR sees as ordinary images.

ECR deletes an image together with its last tag (BatchDeleteImage by tag), but keeps an image whose
last tag moves to another image (PutImage of that tag elsewhere: the image stays, untagged). So a
tag that is an image's last one is never deleted where it is: it is *stripped*, moved onto a parking
image (one that holds protection tags of its own) and deleted there.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from boda.errors import Conflict, Refused
from boda.policy.image import EcrImage
from boda.policy.reference import glob_matches

T = TypeVar("T")

#: Hex digits of the digest in a protection tag.
HEX = 12
PIN, RUN, UNTAG = "pin", "run", "untag"
_LABEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_HEX_TAIL = re.compile(r"-([0-9a-f]{12})$")
#: The most exclusion filters ECR allows on a repository (PutImageTagMutability).
MAX_EXCLUSION_FILTERS = 5


def hex_of(digest: str) -> str:
    """The digest's hex digits as protection tags carry them."""
    return digest.partition(":")[2][:HEX]


@dataclass(frozen=True)
class TagScheme:
    """How protection tags are named for one configuration."""

    prefix: str = "keep-"

    @property
    def pattern(self) -> str:
        """The wildcard that selects every protection tag (lifecycle rules, exclusion filters)."""
        return f"{self.prefix}*"

    def tag(self, label: str, digest: str) -> str:
        """The protection tag of `digest` for `label` (an environment, `pin` or `run`)."""
        if not _LABEL.match(label):
            raise ValueError(f"{label!r} cannot label a protection tag")
        return f"{self.prefix}{label}-{hex_of(digest)}"

    def carrier(self, digest: str) -> str:
        """The transient tag that carries the last tag of `digest` while it is untagged."""
        return self.tag(UNTAG, digest)

    def parse(self, tag: str) -> tuple[str, str] | None:
        """(label, hex) when `tag` has the shape of a protection tag, else None."""
        if not tag.startswith(self.prefix):
            return None
        rest = tag[len(self.prefix) :]
        match = _HEX_TAIL.search(rest)
        if match is None:
            return None
        label = rest[: match.start()]
        return (label, match.group(1)) if _LABEL.match(label) else None

    def owns(self, tag: str, digest: str) -> bool:
        """True when `tag` is a protection tag boda made for `digest` (its digits are the digest's).

        A tag of that shape on another image was not made by boda for it (or was moved by hand): it
        is left alone, and it keeps shielding the image it is on.
        """
        parsed = self.parse(tag)
        return parsed is not None and parsed[1] == hex_of(digest)


# --------------------------------------------------------------------------- the image graph


def close_over_graph(images: Sequence[EcrImage], seeds: Mapping[str, Iterable[T]]) -> dict[str, frozenset[T]]:
    """Labels (or reasons) per digest, spread over the image graph until nothing changes.

    An index gives its labels to its children, an image to its referrers, a referrer to its subject.
    Only digests of `images` are returned (a child that is not in the repository is nobody's).
    """
    by_digest = {image.digest: image for image in images}
    links: dict[str, set[str]] = {d: set() for d in by_digest}
    for image in images:
        for child in image.children:
            if child in by_digest and child != image.digest:
                links[image.digest].add(child)
        if image.subject is not None and image.subject in by_digest and image.subject != image.digest:
            links[image.subject].add(image.digest)
            links[image.digest].add(image.subject)
    out: dict[str, set[T]] = {d: set(labels) for d, labels in seeds.items() if d in by_digest}
    pending = list(out)
    while pending:
        digest = pending.pop()
        for other in links[digest]:
            have = out.setdefault(other, set())
            if not out[digest] <= have:
                have |= out[digest]
                pending.append(other)
    return {d: frozenset(labels) for d, labels in out.items() if labels}


def seed_labels(
    windows: Mapping[str, Iterable[str]],
    *,
    pins: Iterable[str] = (),
    running: Iterable[str] = (),
    env_tags: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, set[str]]:
    """The labels of each digest before the graph: every environment whose window (current and
    rollback digests) holds it, `pin`, `run`, and every environment whose tag in the registry names
    it (strategy `tags`: what the registry says is deployed, ledger or not)."""
    out: dict[str, set[str]] = {}
    for env, digests in (*windows.items(), *(env_tags or {}).items()):
        for digest in digests:
            out.setdefault(digest, set()).add(env)
    for label, digests in ((PIN, pins), (RUN, running)):
        for digest in digests:
            out.setdefault(digest, set()).add(label)
    return out


def retirees(
    scheme: TagScheme,
    images: Sequence[EcrImage],
    labels: Mapping[str, Collection[str]],
    *,
    promoted: Collection[str],
    held: Collection[str] = (),
    keep_labels: Collection[str] = (),
) -> frozenset[str]:
    """The digests `untag_replaced` untags: promoted once, holding no label now (so they left every
    window and are neither pinned nor running), not `held` otherwise (an environment tag in the
    registry names them: drift), still tagged, and carrying no stale protection tag of a label in
    `keep_labels`. Their tagged referrers and children go with them unless protected themselves."""

    def doubtful(image: EcrImage) -> bool:
        owned = [scheme.parse(t) for t in image.tags if scheme.owns(t, image.digest)]
        return any(parsed is not None and parsed[0] in keep_labels for parsed in owned)

    by_digest = {image.digest: image for image in images}

    def retirable(digest: str) -> bool:
        image = by_digest[digest]
        return bool(image.tags) and digest not in labels and digest not in held and not doubtful(image)

    seeds = {d: {"retire"} for d in by_digest if d in promoted and retirable(d)}
    return frozenset(d for d in close_over_graph(images, seeds) if retirable(d))


# --------------------------------------------------------------------------- what a sync does


@dataclass(frozen=True)
class SyncPlan:
    """What one sync changes in one repository, in the order it must happen.

    1. `add`: every missing protection tag, before anything is removed;
    2. `remove`: stale protection tags that are not their image's last tag (deleted where they are);
    3. `strip`: stale protection tags that are their image's last tag (moved onto `parking`, then
       deleted there: the image stays, untagged);
    4. `untag`: every tag of each digest that left every window (`untag_replaced`), removed the
       same way: all but one deleted, the last one stripped.
    `left` says what was not done and why (nothing unsafe is ever planned instead).
    """

    repository: str
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[tuple[str, str], ...] = ()
    strip: tuple[tuple[str, str], ...] = ()
    untag: tuple[tuple[str, tuple[str, ...]], ...] = ()
    parking: str | None = None
    left: tuple[str, ...] = ()
    #: The protection tags every image should hold once the plan is done (digests with none absent).
    wanted: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when the repository already is as it should be."""
        return not (self.add or self.remove or self.strip or self.untag)

    def to_json(self) -> dict[str, object]:
        """JSON form."""
        return {
            "repository": self.repository,
            "add": [{"digest": d, "tag": t} for d, t in self.add],
            "remove": [{"digest": d, "tag": t} for d, t in (*self.remove, *self.strip)],
            "untag": [{"digest": d, "tags": list(tags)} for d, tags in self.untag],
            "parking": self.parking,
            "left": list(self.left),
        }


def plan_sync(
    scheme: TagScheme,
    repository: str,
    images: Sequence[EcrImage],
    labels: Mapping[str, Collection[str]],
    *,
    retire: Collection[str] = (),
    removals: bool = True,
    keep_labels: Collection[str] = (),
) -> SyncPlan:
    """Plan the protection tags of one repository.

    `labels`: the protection labels of each digest, already closed over the graph. `retire`: digests
    to untag completely (`untag_replaced`); one that holds labels is never retired. `removals`
    False (a runtime could not be read, so what it runs is unknown) plans additions only.
    `keep_labels`: labels whose stale tags must stay (the ledger knows nothing current in that
    environment: it may have lost its history, so its tags are not boda's to drop now).
    Conflict when a protection tag the plan needs names another image.
    """
    by_digest = {image.digest: image for image in images}
    holder: dict[str, str] = {tag: image.digest for image in images for tag in image.tags}
    wanted = {
        d: frozenset(scheme.tag(label, d) for label in found)
        for d, found in labels.items()
        if d in by_digest and found
    }
    add: list[tuple[str, str]] = []
    for digest in sorted(wanted):
        for tag in sorted(wanted[digest]):
            other = holder.get(tag)
            if other is not None and other != digest:
                raise Conflict(
                    f"{repository}:{tag} names {other}, but boda needs it on {digest}: two digests"
                    f" share the digits {hex_of(digest)}, or the tag was moved by hand; move it back"
                    " or delete it, then sync again"
                )
            if other is None:
                add.append((digest, tag))
    after = {d: set(image.tags) | set(wanted.get(d, ())) for d, image in by_digest.items()}
    left: list[str] = []
    remove: list[tuple[str, str]] = []
    strip: list[tuple[str, str]] = []
    untag: list[tuple[str, tuple[str, ...]]] = []
    retiring = [d for d in sorted(set(retire)) if d in by_digest and d not in wanted and after[d]]
    if removals:
        for digest in sorted(by_digest):
            if digest in retiring:
                continue
            stale = sorted(
                t
                for t in after[digest]
                if scheme.owns(t, digest)
                and t not in wanted.get(digest, ())
                and (scheme.parse(t) or ("", ""))[0] not in keep_labels
            )
            if not stale:
                continue
            rest = after[digest] - set(stale)
            for tag in stale if rest else stale[:-1]:
                remove.append((digest, tag))
            if not rest:
                strip.append((digest, stale[-1]))
        untag = [(d, tuple(sorted(after[d]))) for d in retiring]
    else:
        stale_anywhere = any(scheme.owns(t, d) for d in by_digest for t in after[d] - set(wanted.get(d, ())))
        if retiring or stale_anywhere:
            left.append("stale protection tags kept and nothing untagged: what the runtimes run is unknown")
    parking = _parking(wanted, {d for d, _ in strip} | {d for d, _ in untag})
    if parking is None and (strip or untag):
        left += [f"{d}: {t} kept (its last tag), no protected image to park it on" for d, t in strip]
        left += [f"{d}: not untagged, no protected image to park its last tag on" for d, _ in untag]
        strip, untag = [], []
    return SyncPlan(
        repository,
        tuple(add),
        tuple(remove),
        tuple(strip),
        tuple(untag),
        parking,
        tuple(left),
        wanted,
    )


def _parking(wanted: Mapping[str, frozenset[str]], busy: Collection[str]) -> str | None:
    """The image a last tag is moved onto before it is deleted: one that keeps protection tags of
    its own through the whole sync (so the moved tag is never its last), the first by digest."""
    return next((d for d in sorted(wanted) if wanted[d] and d not in busy), None)


def apply_plan(images: Sequence[EcrImage], plan: SyncPlan) -> list[EcrImage]:
    """The images as ECR holds them once `plan` is done: tags added, removed, stripped, untagged
    (ECR keeps an image whose last tag moved away). Used to predict and to read back a sync."""
    gone: dict[str, set[str]] = {}
    for digest, tag in (*plan.remove, *plan.strip):
        gone.setdefault(digest, set()).add(tag)
    for digest, untagged in plan.untag:
        gone.setdefault(digest, set()).update(untagged)
    added: dict[str, set[str]] = {}
    for digest, tag in plan.add:
        added.setdefault(digest, set()).add(tag)
    out = []
    for image in images:
        tags = (set(image.tags) | added.get(image.digest, set())) - gone.get(image.digest, set())
        out.append(msgspec.structs.replace(image, tags=tuple(sorted(tags))))
    return out


# --------------------------------------------------------------------------- tag mutability


def mutability_change(
    repository: str, mutability: str, filters: Sequence[str], needed: Sequence[str]
) -> tuple[str, tuple[str, ...]] | None:
    """The tag-mutability setting a repository needs so that the tags in `needed` can move (exact
    names, or one `prefix*` wildcard), everything else keeping its immutability; None when it already
    allows it.

    IMMUTABLE becomes IMMUTABLE_WITH_EXCLUSION with one filter per needed tag; missing filters are
    added to IMMUTABLE_WITH_EXCLUSION. MUTABLE allows everything. Refused when the settings forbid it
    (MUTABLE_WITH_EXCLUSION filters that make a needed tag immutable, or more than ECR's 5 filters):
    boda does not make a tag immutable that someone chose to freeze.
    """
    if mutability == "MUTABLE":
        return None
    if mutability == "MUTABLE_WITH_EXCLUSION":
        frozen = [(f, n) for f in filters for n in needed if _may_match(f, n)]
        if frozen:
            f, n = frozen[0]
            raise Refused(
                f"{repository}: its exclusion filter {f!r} makes {n} immutable (MUTABLE_WITH_EXCLUSION);"
                " native retention must move those tags: remove that filter, or choose another"
                " [retention] protection_prefix"
            )
        return None
    current = list(filters) if mutability == "IMMUTABLE_WITH_EXCLUSION" else []
    missing = [n for n in needed if not any(_covers(f, n) for f in current)]
    if not missing:
        return None
    together = current + missing
    if len(together) > MAX_EXCLUSION_FILTERS:
        raise Refused(
            f"{repository}: tags {', '.join(missing)} must be mutable, which needs {len(together)}"
            f" exclusion filters; ECR allows {MAX_EXCLUSION_FILTERS} (IMMUTABLE_WITH_EXCLUSION): merge"
            " filters with wildcards by hand (aws ecr put-image-tag-mutability)"
        )
    return "IMMUTABLE_WITH_EXCLUSION", tuple(together)


def _covers(filter_: str, needed: str) -> bool:
    """Whether an exclusion filter matches every tag `needed` stands for (an exact name, or
    `prefix*`: every tag starting with prefix; a filter ending in `*` that matches the bare prefix
    matches every extension of it, and only such a filter does)."""
    if needed.endswith("*"):
        return filter_.endswith("*") and glob_matches(filter_, needed[:-1])
    return glob_matches(filter_, needed)


def _may_match(filter_: str, needed: str) -> bool:
    """Whether an exclusion filter matches at least one tag `needed` stands for."""
    if not needed.endswith("*"):
        return glob_matches(filter_, needed)
    prefix = needed[:-1]
    # Run the filter's wildcard automaton over the prefix: if any position survives, some
    # completion of the prefix matches (the rest of the filter spells it).
    states = _advance({0}, filter_)
    for char in prefix:
        states = _advance(
            {s + 1 for s in states if s < len(filter_) and filter_[s] == char}
            | {s for s in states if s < len(filter_) and filter_[s] == "*"},
            filter_,
        )
        if not states:
            return False
    return True


def _advance(states: set[int], pattern: str) -> set[int]:
    """Add the positions reachable by letting each `*` match nothing."""
    out = set(states)
    for s in sorted(states):
        while s < len(pattern) and pattern[s] == "*":
            s += 1
            out.add(s)
    return out
