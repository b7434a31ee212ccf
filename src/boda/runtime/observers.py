"""Which observer reads which runtime, and reading one: backends are imported on first use."""

from __future__ import annotations

from boda.locations import RuntimeLocation
from boda.runtime.base import Observation, Observer, RuntimeUnavailable

_EXTRA_HINT = "pip install 'boda[runtime]' (boto3 for ECS and Lambda, PyYAML for kubeconfig)"


def open_observer(location: RuntimeLocation) -> Observer:
    """The observer for `location`; its backend library (boto3, httpx, PyYAML) is imported here, on
    first use, and a missing one is a RuntimeUnavailable naming the extra to install."""
    try:
        if location.kind == "ecs":
            from boda.runtime.ecs import EcsObserver

            return EcsObserver(location)
        if location.kind == "lambda":
            from boda.runtime.aws_lambda import LambdaObserver

            return LambdaObserver(location)
        if location.kind == "k8s":
            import yaml  # noqa: F401 - kubeconfig is YAML; fail here, before any request

            from boda.runtime.k8s import KubernetesObserver

            return KubernetesObserver(location)
    except ModuleNotFoundError as exc:
        raise RuntimeUnavailable(
            location, f"cannot read {location.kind} runtimes: {exc.name} is not installed", hint=_EXTRA_HINT
        ) from exc
    from boda.runtime.file import FileObserver

    return FileObserver(location)


def observe(location: RuntimeLocation) -> Observation:
    """Read `location` completely (RuntimeUnavailable otherwise) and close what was opened."""
    observer = open_observer(location)
    try:
        return observer.observe()
    finally:
        observer.close()
