"""What runs where: the records every runtime observer returns, its one protocol, and its error.

An observer reads one `RuntimeLocation` completely or raises `RuntimeUnavailable` (exit 6): a read
that was denied, throttled past its retries, or lost a page is never returned as a smaller answer,
because expiry treats whatever is not in the answer as not in use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from boda.errors import Unavailable
from boda.locations import RuntimeLocation
from boda.types import Digest, is_digest

#: What a record says about its image:
#: - "running": tasks, pods, Lambda versions that serve invocations, lines of a file;
#: - "deployed": what a runtime is told to run (an ECS deployment, a workload's pod template);
#:   it starts from this image on the next scale-out;
#: - "rollback": kept to go back to (the ECS service revision before the current one, a
#:   ReplicaSet scaled to zero); it starts from this image on a rollback.
Role = Literal["running", "deployed", "rollback"]
ROLES: tuple[Role, ...] = ("running", "deployed", "rollback")


class RuntimeUnavailable(Unavailable):
    """A runtime could not be read completely (denied, throttled past retries, a page missing)."""

    def __init__(self, runtime: RuntimeLocation | str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"runtime {runtime}: {message}", hint=hint)
        self.runtime = str(runtime)


@dataclass(frozen=True)
class RunningImage:
    """One image a runtime runs, is told to run, or keeps for a rollback.

    `image` is the reference as the runtime has it (a tag, a digest, or both); `digest` is the
    digest the runtime itself resolved or reports (ECS's resolved digest, Lambda's
    `ResolvedImageUri`, a pod's `imageID`), None when the runtime does not know one (a tag in a
    pod template): the caller resolves such a tag, never the observer.
    """

    #: Where, finer than the runtime: `ecs:prod-cluster/web`, `lambda:eu-west-1/fn:live`,
    #: `k8s:ctx/shop/deployment/web`, `file:/abs/deployed.txt`.
    place: str
    image: str
    digest: Digest | None
    role: Role
    #: What said so: "task", "deployment", "service-revision", "function", "pod", "template",
    #: "file".
    source: str
    #: How many tasks or pods this record stands for (None where counting makes no sense).
    tasks: int | None = None
    #: The container's name, when the runtime names containers.
    container: str = ""
    #: For people: "PRIMARY deployment ecs-svc/123, 3 running of 3", "alias live, weight 0.1".
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "place": self.place,
            "image": self.image,
            "digest": str(self.digest) if self.digest else None,
            "role": self.role,
            "source": self.source,
            "tasks": self.tasks,
            "container": self.container,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Observation:
    """Everything one runtime runs, read completely, and the requests it took."""

    runtime: RuntimeLocation
    images: tuple[RunningImage, ...]
    requests: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "runtime": str(self.runtime),
            "kind": self.runtime.kind,
            "requests": self.requests,
            "images": [i.to_json() for i in self.images],
        }


class Observer(Protocol):
    """Reads one runtime location."""

    location: RuntimeLocation

    def observe(self) -> Observation:
        """Everything the location runs; RuntimeUnavailable when it cannot be read completely."""
        ...

    def close(self) -> None:
        """Release clients and connections."""
        ...


@dataclass
class RequestCounter:
    """Requests sent to a runtime's API (a retry counts again); thread-safe."""

    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, n: int = 1) -> None:
        """Count `n` more requests."""
        with self._lock:
            self.count += n


def digest_after_at(text: str) -> Digest | None:
    """The digest of `name@sha256:…` (or of a bare `sha256:…`), None when there is none."""
    _, at, tail = text.rpartition("@")
    candidate = tail if at else text
    return Digest.parse(candidate) if is_digest(candidate) else None


def merge(images: list[RunningImage]) -> tuple[RunningImage, ...]:
    """Records that differ only in their task count become one, with the counts added; the order of
    first appearance is kept."""
    merged: dict[tuple[Any, ...], RunningImage] = {}
    for image in images:
        key = (
            image.place,
            image.image,
            image.digest,
            image.role,
            image.source,
            image.container,
            image.detail,
        )
        seen = merged.get(key)
        if seen is None:
            merged[key] = image
        elif image.tasks is not None:
            merged[key] = replace(seen, tasks=(seen.tasks or 0) + image.tasks)
    return tuple(merged.values())
