"""Kubernetes objects to records, shared by the API observer and by `kubectl get pods -o json` files.

A pod's digest comes from its container statuses' `imageID` when that names a repository digest
(`repo@sha256:…`, with or without docker's `docker-pullable://`); a bare `sha256:…` is a local image
ID, not a manifest digest, and is not used. Pod templates name what the next pod will pull: their
tags are returned as they are, for the caller to resolve.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from boda.runtime.base import Role, RunningImage, digest_after_at
from boda.types import Digest

#: (spec key, status key) of the three kinds of containers a pod has.
CONTAINER_KINDS = (
    ("initContainers", "initContainerStatuses"),
    ("containers", "containerStatuses"),
    ("ephemeralContainers", "ephemeralContainerStatuses"),
)
#: Phases of pods that will run no container again.
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


def image_id_digest(image_id: Any) -> Digest | None:
    """The manifest digest of a container status's `imageID`, or None."""
    if not isinstance(image_id, str) or "@" not in image_id:
        return None
    return digest_after_at(image_id.split("://", 1)[-1])


def mapping(value: Any) -> Mapping[str, Any]:
    """`value` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _meta(item: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(item.get("metadata"))


def controller_of(item: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the object's controller (its ownerReference with `controller: true`)."""
    for ref in _meta(item).get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller") and ref.get("kind") and ref.get("name"):
            return str(ref["kind"]), str(ref["name"])
    return None


class Owners:
    """Who controls a pod, up the chain: Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob."""

    def __init__(
        self, replicasets: Iterable[Mapping[str, Any]] = (), jobs: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        self._parents: dict[tuple[str, str, str], tuple[str, str]] = {}
        for kind, items in (("ReplicaSet", replicasets), ("Job", jobs)):
            for item in items:
                owner = controller_of(item)
                if owner is not None:
                    self._parents[(namespace_of(item), kind, str(_meta(item).get("name", "")))] = owner

    def top(self, namespace: str, kind: str, name: str) -> tuple[str, str]:
        """The outermost controller of (kind, name), itself when nothing controls it."""
        seen = set()
        while (namespace, kind, name) in self._parents and (kind, name) not in seen:
            seen.add((kind, name))
            kind, name = self._parents[(namespace, kind, name)]
        return kind, name

    def place(self, prefix: str, item: Mapping[str, Any], kind: str) -> str:
        """`PREFIX/NAMESPACE/KIND/NAME` of the workload `item` belongs to (lower-case kind)."""
        namespace = namespace_of(item)
        owner = controller_of(item)
        top_kind, top_name = (
            self.top(namespace, *owner) if owner is not None else (kind, str(_meta(item).get("name", "?")))
        )
        return f"{prefix}/{namespace}/{top_kind.lower()}/{top_name}"


def namespace_of(item: Mapping[str, Any]) -> str:
    """The object's namespace ("default" when it names none, as kubectl does)."""
    return str(_meta(item).get("namespace") or "default")


def pod_images(pod: Mapping[str, Any], place: str) -> list[RunningImage]:
    """Every container of a pod that may still run: init, regular and ephemeral ones."""
    status = mapping(pod.get("status"))
    phase = str(status.get("phase") or "Pending")
    if phase in FINISHED_PHASES:
        return []
    spec = mapping(pod.get("spec"))
    images = []
    for spec_key, status_key in CONTAINER_KINDS:
        statuses = {s.get("name"): s for s in status.get(status_key) or () if isinstance(s, dict)}
        for container in spec.get(spec_key) or ():
            if not isinstance(container, dict):
                continue
            name = str(container.get("name", ""))
            state = mapping(statuses.get(name))
            image = str(container.get("image") or state.get("image") or "")
            if not image:
                continue
            digest = image_id_digest(state.get("imageID")) or digest_after_at(image)
            images.append(
                RunningImage(
                    place, image, digest, "running", "pod", tasks=1, container=name, detail=f"pods {phase}"
                )
            )
    return images


def template_images(
    template: Any, place: str, role: Role, detail: str, tasks: int | None = None
) -> list[RunningImage]:
    """The containers of a pod template (`spec.template` of a workload)."""
    spec = mapping(mapping(template).get("spec"))
    images = []
    for spec_key, _ in CONTAINER_KINDS:
        for container in spec.get(spec_key) or ():
            if isinstance(container, dict) and container.get("image"):
                image = str(container["image"])
                images.append(
                    RunningImage(
                        place,
                        image,
                        digest_after_at(image),
                        role,
                        "template",
                        tasks=tasks,
                        container=str(container.get("name", "")),
                        detail=detail,
                    )
                )
    return images
