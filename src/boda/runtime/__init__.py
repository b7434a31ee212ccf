"""Runtime observers: what ECS, Lambda, Kubernetes (or a file) actually run, read completely or not
at all. `observe(location)` is the entry point; backends are imported when first used."""

from boda.runtime.base import (
    ROLES,
    Observation,
    Observer,
    Role,
    RunningImage,
    RuntimeUnavailable,
)
from boda.runtime.observers import observe, open_observer

__all__ = [
    "ROLES",
    "Observation",
    "Observer",
    "Role",
    "RunningImage",
    "RuntimeUnavailable",
    "observe",
    "open_observer",
]
