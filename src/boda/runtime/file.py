"""`file:PATH`: image references listed by something boda does not speak to (Nomad, Cloud Run, a CMDB
export, a script).

Either one reference per line (`#` starts a comment; blank lines are ignored), or the JSON of
`kubectl get pods -o json` (a List of Pods, or one Pod), read like the pods of the Kubernetes
observer. A file that cannot be read raises RuntimeUnavailable (exit 6); a line that is not an
image reference is bad input (exit 2, naming file and line).
"""

from __future__ import annotations

import json
from typing import Any

from boda.errors import ReferenceError_, UsageError
from boda.locations import RuntimeLocation
from boda.runtime.base import Observation, RunningImage, RuntimeUnavailable, digest_after_at, merge
from boda.runtime.pods import Owners, pod_images
from boda.types import Reference

MAX_BYTES = 64 * 1024 * 1024


class FileObserver:
    """Reads `file:PATH`."""

    def __init__(self, location: RuntimeLocation) -> None:
        if location.kind != "file" or location.path is None:
            raise ValueError(f"not a file runtime: {location}")
        self.location = location
        self.path = location.path

    def close(self) -> None:
        """Nothing to release."""

    def observe(self) -> Observation:
        """The references the file lists."""
        try:
            with self.path.open("rb") as handle:
                data = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise RuntimeUnavailable(self.location, f"cannot read {self.path}: {exc.strerror}") from exc
        if len(data) > MAX_BYTES:
            raise RuntimeUnavailable(self.location, f"{self.path} is larger than {MAX_BYTES // 2**20} MiB")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{self.path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        if text.lstrip().startswith("{"):
            return Observation(self.location, merge(self._pods(text)), 0)
        return Observation(self.location, merge(self._lines(text)), 0)

    def _lines(self, text: str) -> list[RunningImage]:
        images = []
        place = f"file:{self.path}"
        for number, line in enumerate(text.splitlines(), 1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            try:
                Reference.parse(entry)
            except ReferenceError_ as exc:
                raise ReferenceError_(f"{self.path}:{number}: {exc.message}") from exc
            images.append(
                RunningImage(place, entry, digest_after_at(entry), "running", "file", detail=f"line {number}")
            )
        return images

    def _pods(self, text: str) -> list[RunningImage]:
        try:
            document: Any = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"{self.path}: not a list of references nor valid JSON: {exc}") from exc
        if isinstance(document, dict) and document.get("kind") == "Pod":
            items: Any = [document]
        elif isinstance(document, dict) and isinstance(document.get("items"), list):
            items = document["items"]
        else:
            raise UsageError(f"{self.path}: JSON, but not the output of `kubectl get pods -o json`")
        pods = [i for i in items if isinstance(i, dict) and i.get("kind", "Pod") == "Pod"]
        if len(pods) != len(items):
            raise UsageError(f"{self.path}: the list holds objects that are not pods")
        owners = Owners()
        images = []
        for pod in pods:
            images += pod_images(pod, owners.place(f"file:{self.path}", pod, "Pod"))
        return images
