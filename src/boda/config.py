"""Settings from `boda.toml`: registry, ledger, promotion strategy, environments, retention.

Found by `--config`, else `$BODA_CONFIG`, else `boda.toml` in the working directory or a parent.
Every error names the file, the key and the line.
"""

from __future__ import annotations

import difflib
import os
import re
import string
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from boda.deadline import DEFAULT as DEFAULT_DEADLINE
from boda.deadline import parse as parse_deadline
from boda.errors import ConfigError, NotFound, UsageError
from boda.locations import LedgerLocation, RegistryLocation, RuntimeLocation
from boda.types import depth_exceeds, validate_evidence_kind, validate_repository, validate_tag

CONFIG_NAME = "boda.toml"
DEFAULT_REGISTRY = "oci-layout:.boda/registry"
DEFAULT_LEDGER = "sqlite:///.boda/ledger.db"
STRATEGIES = ("tags", "repos")
AGE_FROM = ("push", "promotion")
RETENTION_MODES = ("boda", "native")
DEFAULT_PROTECTION_PREFIX = "keep-"
#: Labels of protection tags that are not environment names (`keep-pin-…`, `keep-run-…`, the
#: transient `keep-untag-…`): in native mode no environment may be called so.
PROTECTION_KINDS = ("pin", "run", "untag")
_PROTECTION_PREFIX = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
_ENV_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62})$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
SAMPLE_SHA = "0123456789abcdef0123456789abcdef01234567"
# The precision of a format spec (`.8` of `{commit:>10.8}`): the last `.N` before an optional type.
_PRECISION = re.compile(r"\.(\d+)(?=[a-zA-Z%]?\Z)")
#: How much longer each commit tag tried after a collision is (`.8` -> `.12` -> `.16` ... the full SHA).
COMMIT_TAG_STEP = 4
#: Bounds of numbers a config may hold: larger ones are typos, and would overflow dates and SQL.
MAX_ROLLBACK_DEPTH = 10_000
MAX_DURATION = timedelta(days=100 * 366)
#: Nesting of arrays and tables a config may have: its deepest value sits 3 levels down, and text
#: nested thousands deep exhausts the recursion of the TOML reader.
MAX_CONFIG_DEPTH = 32


@dataclass(frozen=True)
class Environment:
    """A stage: its upstream (`after`), the evidence kinds it requires from there, and where its
    images run (`runtimes`).

    With `requires_signed`, the gate also reads the signed statements from the registry and
    verifies them (boda.services.attest), not only the ledger's rows.
    """

    name: str
    after: str | None = None
    requires: tuple[str, ...] = ()
    requires_signed: bool = False
    runtimes: tuple[RuntimeLocation, ...] = ()


@dataclass(frozen=True)
class Retention:
    """What expiry keeps regardless of the policy, where the policy is, and who deletes.

    `mode` "boda": `boda gc apply` deletes; "native": ECR's own lifecycle policy deletes, and boda
    keeps a protection tag (`protection_prefix`, e.g. `keep-prd-0123456789ab`) on every image it
    protects (boda.services.native_retention).
    """

    rollback_depth: int = 3
    min_age: timedelta = timedelta(days=1)
    age_from: str = "push"
    policy: Path | None = None
    #: How old an unreferenced blob of the OCI layout must be before expiry frees it.
    blob_grace: timedelta = timedelta(hours=1)
    mode: str = "boda"
    protection_prefix: str = DEFAULT_PROTECTION_PREFIX


@dataclass(frozen=True)
class Limits:
    """How long a command may take (`[limits] deadline`; BODA_DEADLINE wins, see boda.deadline)."""

    #: Seconds; None when the config says "off".
    deadline: float | None = DEFAULT_DEADLINE.total_seconds()


@dataclass(frozen=True)
class EcrSettings:
    """Settings for repositories boda creates on ECR (strategy `repos`)."""

    tag_mutability: str = "MUTABLE"
    scan_on_push: bool = False
    lifecycle_policy: Path | None = None


@dataclass(frozen=True)
class Config:
    """The whole configuration; `base_dir` anchors relative paths (the config file's folder)."""

    registry: RegistryLocation = field(default_factory=lambda: RegistryLocation.parse(DEFAULT_REGISTRY))
    ledger: LedgerLocation = field(default_factory=lambda: LedgerLocation.parse(DEFAULT_LEDGER))
    strategy: str = "tags"
    commit_tag: str = "{commit:.8}"
    repo_template: str = "{app}-{env}"
    copy_referrers: bool = True
    #: Native retention: remove every tag of a digest that left every environment's rollback
    #: window and is neither pinned nor running, so that an untagged-image rule expires it.
    untag_replaced: bool = False
    environments: tuple[Environment, ...] = ()
    retention: Retention = field(default_factory=Retention)
    ecr: EcrSettings = field(default_factory=EcrSettings)
    limits: Limits = field(default_factory=Limits)
    #: Evidence kinds no environment requires but that may be recorded (`[evidence] kinds`).
    extra_evidence_kinds: tuple[str, ...] = ()
    #: The key evidence, promotions and rollbacks are signed with (`[evidence] sign`): an absolute
    #: PEM path or `kms:KEY`. None: unsigned unless a command names a key.
    evidence_sign: str | None = None
    #: The keys signed statements are verified with (`[evidence] verify`), same forms.
    evidence_verify: tuple[str, ...] = ()
    base_dir: Path = field(default_factory=Path.cwd)
    path: Path | None = None

    def environment(self, name: str) -> Environment:
        """The environment called `name` (NotFound when unknown)."""
        for env in self.environments:
            if env.name == name:
                return env
        names = [e.name for e in self.environments]
        close = difflib.get_close_matches(name, names, n=1)
        raise NotFound(
            f"unknown environment {name!r} (configured: {', '.join(names) or 'none'})",
            hint=f"did you mean {close[0]!r}?" if close else None,
        )

    @property
    def evidence_kinds(self) -> tuple[str, ...]:
        """Every kind of evidence that may be recorded: what environments require, and more."""
        kinds = [k for env in self.environments for k in env.requires] + list(self.extra_evidence_kinds)
        return tuple(dict.fromkeys(kinds))

    def commit_tag_for(self, commit: str) -> str:
        """The immutable tag written at build time for `commit` (see `commit_tags_for`)."""
        return self.commit_tag.format(commit=commit)

    @property
    def commit_tag_digits(self) -> int | None:
        """How many leading digits of a commit its template tag shows at least: the shortest
        precision of a `{commit:.N}`; None when the template writes the whole SHA."""
        return min(
            (
                int(match.group(1))
                for _, name, spec, _ in string.Formatter().parse(self.commit_tag)
                if name == "commit" and spec and (match := _PRECISION.search(spec))
            ),
            default=None,
        )

    def commit_tags_for(self, commit: str) -> list[str]:
        """The commit tags `commit` may get, in the order `boda build` tries them: the template's,
        then (for when another commit already holds it) the template with the precision of each
        `{commit:.N}` lengthened by COMMIT_TAG_STEP digits at a time, up to the full SHA. A template
        without a precision writes the full SHA and has no longer form."""
        tags = [self.commit_tag_for(commit)]
        shortest = self.commit_tag_digits
        if shortest is None:
            return tags
        parts = list(string.Formatter().parse(self.commit_tag))
        start = (shortest // COMMIT_TAG_STEP + 1) * COMMIT_TAG_STEP
        for precision in [*range(start, len(commit), COMMIT_TAG_STEP), len(commit)]:
            tag = "".join(_with_precision(part, precision) for part in parts).format(commit=commit)
            try:
                validate_tag(tag)
            except ValueError:
                break  # the longer ones are too long as well
            if tag not in tags:
                tags.append(tag)
        return tags

    def repository_for(self, app: str, env: str | None) -> str:
        """The repository holding `app`'s images in `env` (the app's own repository for `tags`)."""
        if env is None or self.strategy == "tags":
            return app
        return self.repo_template.format(app=app, env=env)


def _with_precision(part: tuple[str, str | None, str | None, str | None], precision: int) -> str:
    """One parsed piece of the commit tag template written back, a `{commit:.N}` precision raised
    to at least `precision`."""
    literal, name, spec, conversion = part
    text = literal.replace("{", "{{").replace("}", "}}")
    if name is None:
        return text
    spec = spec or ""
    if name == "commit" and (match := _PRECISION.search(spec)) and int(match.group(1)) < precision:
        spec = f"{spec[: match.start(1)]}{precision}{spec[match.end(1) :]}"
    return text + "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"


def find_config(explicit: str | Path | None = None, *, start: Path | None = None) -> Path | None:
    """The config file to use: explicit, $BODA_CONFIG, or boda.toml here or in a parent."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("BODA_CONFIG")
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load_config(path: str | Path | None = None, *, required: bool = True) -> Config:
    """Load and validate the configuration (ConfigError, exit 2, on any problem)."""
    found = find_config(path)
    if found is None:
        if required:
            raise ConfigError(
                f"no {CONFIG_NAME} found in {Path.cwd()} or its parents",
                hint="run `boda init` to write one, or pass --config / set BODA_CONFIG",
            )
        return Config()
    try:
        text = found.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{found}: cannot read the config file: {exc.strerror}") from exc
    return parse_config(text, found)


def parse_config(text: str, path: Path) -> Config:
    """Validate the TOML text of a config file located at `path`."""
    too_deep = f"{path}: arrays or tables nested more than {MAX_CONFIG_DEPTH} levels deep"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(too_deep) from exc
    if depth_exceeds(data, MAX_CONFIG_DEPTH):
        raise ConfigError(too_deep)
    return _Parser(text, path).config(data)


class _Parser:
    """Turns TOML data into a Config; knows where each key sits for error messages."""

    def __init__(self, text: str, path: Path) -> None:
        self.lines = text.splitlines()
        self.path = path

    def fail(self, message: str, keypath: Sequence[str | int]) -> ConfigError:
        line = self._line_of(keypath)
        dotted = _dotted(keypath)
        where = f"{self.path}:{line}" if line else str(self.path)
        return ConfigError(f"{where}: {dotted}: {message}")

    def _line_of(self, keypath: Sequence[str | int]) -> int | None:
        """Best-effort line of a key: finds its table header, then the key inside that table."""
        table: list[str | int] = [k for k in keypath[:-1]]
        key = keypath[-1] if keypath else None
        start, end = 0, len(self.lines)
        if table:
            header = ".".join(str(k) for k in table if isinstance(k, str))
            index = next((k for k in table if isinstance(k, int)), None)
            found = self._header_line(header, index)
            if found is None:
                return None
            start = found
            end = next(
                (i for i in range(start + 1, len(self.lines)) if self.lines[i].lstrip().startswith("[")),
                len(self.lines),
            )
        else:
            end = next((i for i, ln in enumerate(self.lines) if ln.lstrip().startswith("[")), len(self.lines))
        if isinstance(key, str):
            pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
            for i in range(start, end):
                if pattern.match(self.lines[i]):
                    return i + 1
            if table:
                return start + 1
        if isinstance(key, int) and table == []:
            return None
        return start + 1 if table else None

    def _header_line(self, header: str, index: int | None) -> int | None:
        count = -1
        for i, line in enumerate(self.lines):
            stripped = line.strip()
            if index is None and stripped == f"[{header}]":
                return i
            if index is not None and stripped == f"[[{header}]]":
                count += 1
                if count == index:
                    return i
        return None

    def config(self, data: Mapping[str, Any]) -> Config:
        known = {"registry", "ledger", "promotion", "environments", "retention", "ecr", "evidence", "limits"}
        self._unknown(data, known, [])
        base = self.path.resolve().parent
        registry_text = self._str(data, "registry", [], DEFAULT_REGISTRY)
        ledger_text = self._str(data, "ledger", [], DEFAULT_LEDGER)
        try:
            registry = RegistryLocation.parse(registry_text, base_dir=base)
        except UsageError as exc:
            raise self.fail(exc.diagnostics(), ["registry"]) from exc
        try:
            ledger = LedgerLocation.parse(ledger_text, base_dir=base)
        except UsageError as exc:
            raise self.fail(exc.diagnostics(), ["ledger"]) from exc
        promotion = self._table(data, "promotion")
        self._unknown(
            promotion,
            {"strategy", "commit_tag", "repo_template", "copy_referrers", "untag_replaced"},
            ["promotion"],
        )
        strategy = self._choice(promotion, "strategy", ["promotion"], "tags", STRATEGIES)
        commit_tag = self._str(promotion, "commit_tag", ["promotion"], "{commit:.8}")
        repo_template = self._str(promotion, "repo_template", ["promotion"], "{app}-{env}")
        copy_referrers = self._bool(promotion, "copy_referrers", ["promotion"], True)
        untag_replaced = self._bool(promotion, "untag_replaced", ["promotion"], False)
        self._check_templates(commit_tag, repo_template)
        environments = self._environments(data.get("environments", []))
        retention = self._retention(self._table(data, "retention"))
        if retention.mode == "native":
            self._check_native(registry, retention, commit_tag, environments)
        elif untag_replaced:
            raise self.fail(
                'needs [retention] mode = "native": only ECR\'s own lifecycle policy expires untagged images',
                ["promotion", "untag_replaced"],
            )
        ecr = self._ecr(self._table(data, "ecr"))
        extra_kinds, sign, verify = self._evidence(self._table(data, "evidence"))
        if not (sign or verify):
            for i, env in enumerate(environments):
                if env.requires_signed:
                    raise self.fail(
                        "needs a key to verify with: set [evidence] verify (or sign)",
                        ["environments", i, "requires_signed"],
                    )
        limits = self._limits(self._table(data, "limits"))
        return Config(
            registry=registry,
            ledger=ledger,
            strategy=strategy,
            commit_tag=commit_tag,
            repo_template=repo_template,
            copy_referrers=copy_referrers,
            untag_replaced=untag_replaced,
            environments=environments,
            retention=retention,
            ecr=ecr,
            extra_evidence_kinds=extra_kinds,
            evidence_sign=sign,
            evidence_verify=verify,
            limits=limits,
            base_dir=base,
            path=self.path,
        )

    def _table(self, data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail("must be a table", [key])
        return value

    def _unknown(self, data: Mapping[str, Any], known: set[str], at: list[str | int]) -> None:
        for key in data:
            if key not in known:
                raise self.fail(f"unknown key (known: {', '.join(sorted(known))})", [*at, key])

    def _str(self, data: Mapping[str, Any], key: str, at: list[str | int], default: str) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail("must be a non-empty string", [*at, key])
        return value

    def _bool(self, data: Mapping[str, Any], key: str, at: list[str | int], default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail("must be true or false", [*at, key])
        return value

    def _choice(
        self, data: Mapping[str, Any], key: str, at: list[str | int], default: str, choices: Sequence[str]
    ) -> str:
        value = self._str(data, key, at, default)
        if value not in choices:
            raise self.fail(
                f"must be one of {', '.join(repr(c) for c in choices)}, not {value!r}", [*at, key]
            )
        return value

    def _check_templates(self, commit_tag: str, repo_template: str) -> None:
        try:
            tag = commit_tag.format(commit=SAMPLE_SHA)
            validate_tag(tag)
        except (KeyError, IndexError, ValueError) as exc:
            raise self.fail(
                f"does not make a valid tag from a commit SHA: {exc}", ["promotion", "commit_tag"]
            ) from exc
        try:
            validate_repository(repo_template.format(app="foo/bar", env="prd"))
        except (KeyError, IndexError, ValueError) as exc:
            raise self.fail(
                f"does not make a valid repository from {{app}} and {{env}}: {exc}",
                ["promotion", "repo_template"],
            ) from exc
        if "{env}" not in repo_template or "{app}" not in repo_template:
            raise self.fail(
                "must contain {app} and {env}: each app and environment needs a repository of its own",
                ["promotion", "repo_template"],
            )

    def _environments(self, raw: Any) -> tuple[Environment, ...]:
        if not isinstance(raw, list):
            raise self.fail("must be an array of tables ([[environments]])", ["environments"])
        envs: list[Environment] = []
        for i, item in enumerate(raw):
            at: list[str | int] = ["environments", i]
            if not isinstance(item, dict):
                raise self.fail("must be a table", at)
            self._unknown(item, {"name", "after", "requires", "requires_signed", "runtimes"}, at)
            if "name" not in item:
                raise self.fail("is required", [*at, "name"])
            name = self._str(item, "name", at, "")
            if not _ENV_NAME.match(name):
                raise self.fail(f"{name!r}: use lower-case letters, digits, '-' and '_'", [*at, "name"])
            if any(e.name == name for e in envs):
                raise self.fail(f"environment {name!r} is defined twice", [*at, "name"])
            after = item.get("after")
            if after is not None and (not isinstance(after, str) or not after):
                raise self.fail("must be the name of another environment", [*at, "after"])
            requires = item.get("requires", [])
            if not isinstance(requires, list) or not all(_is_evidence_kind(r) for r in requires):
                raise self.fail(
                    'must be a list of evidence kinds such as ["tests", "signoff"]', [*at, "requires"]
                )
            if requires and after is None:
                raise self.fail(
                    "needs `after`: evidence is required from an upstream environment", [*at, "requires"]
                )
            signed = self._bool(item, "requires_signed", at, False)
            if signed and not requires:
                raise self.fail(
                    "needs `requires`: there is no evidence to require signed", [*at, "requires_signed"]
                )
            runtimes = self._runtimes(item.get("runtimes", []), [*at, "runtimes"])
            envs.append(Environment(name, after, tuple(requires), signed, runtimes))
        if not envs:
            raise self.fail(
                "define at least one environment ([[environments]] with a name)", ["environments"]
            )
        names = {e.name for e in envs}
        for i, env in enumerate(envs):
            if env.after is not None and env.after not in names:
                raise self.fail(
                    f"upstream {env.after!r} is not a configured environment", ["environments", i, "after"]
                )
        for i, env in enumerate(envs):
            seen = {env.name}
            cursor = env.after
            while cursor is not None:
                if cursor in seen:
                    raise self.fail(
                        f"environments form a cycle through {env.name!r}", ["environments", i, "after"]
                    )
                seen.add(cursor)
                cursor = next(e.after for e in envs if e.name == cursor)
        return tuple(envs)

    def _runtimes(self, raw: Any, at: list[str | int]) -> tuple[RuntimeLocation, ...]:
        if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
            raise self.fail(
                'must be a list of runtimes such as ["ecs:prod-cluster/web", "lambda:eu-west-1/*",'
                ' "k8s:prod-context/shop", "file:deployed.txt"]',
                at,
            )
        base = self.path.resolve().parent
        found: list[RuntimeLocation] = []
        for text in raw:
            try:
                location = RuntimeLocation.parse(text, base_dir=base)
            except UsageError as exc:
                raise self.fail(exc.diagnostics(), at) from exc
            if location in found:
                raise self.fail(f"runtime {text!r} is listed twice", at)
            found.append(location)
        return tuple(found)

    def _retention(self, data: Mapping[str, Any]) -> Retention:
        at: list[str | int] = ["retention"]
        known = {"rollback_depth", "min_age", "age_from", "policy", "blob_grace", "mode", "protection_prefix"}
        self._unknown(data, known, at)
        depth = data.get("rollback_depth", 3)
        if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= MAX_ROLLBACK_DEPTH:
            raise self.fail(f"must be a whole number from 0 to {MAX_ROLLBACK_DEPTH}", [*at, "rollback_depth"])
        min_age_text = data.get("min_age", "1d")
        if not isinstance(min_age_text, str):
            raise self.fail('must be a duration such as "12h", "1d" or "2w"', [*at, "min_age"])
        try:
            min_age = parse_duration(min_age_text)
        except ValueError as exc:
            raise self.fail(str(exc), [*at, "min_age"]) from exc
        age_from = self._choice(data, "age_from", at, "push", AGE_FROM)
        policy = data.get("policy")
        if policy is not None and (not isinstance(policy, str) or not policy):
            raise self.fail("must be the path of an ECR lifecycle policy JSON file", [*at, "policy"])
        mode = self._choice(data, "mode", at, "boda", RETENTION_MODES)
        prefix = self._str(data, "protection_prefix", at, DEFAULT_PROTECTION_PREFIX)
        if not _PROTECTION_PREFIX.match(prefix):
            raise self.fail(
                "must be 1 to 32 lower-case letters, digits, '.', '_' or '-', starting with a letter or"
                ' digit, such as "keep-"',
                [*at, "protection_prefix"],
            )
        base = self.path.resolve().parent
        grace_text = data.get("blob_grace", "1h")
        if not isinstance(grace_text, str):
            raise self.fail('must be a duration such as "0s", "10m" or "1h"', [*at, "blob_grace"])
        try:
            grace = parse_duration(grace_text)
        except ValueError as exc:
            raise self.fail(str(exc), [*at, "blob_grace"]) from exc
        return Retention(depth, min_age, age_from, (base / policy) if policy else None, grace, mode, prefix)

    def _check_native(
        self,
        registry: RegistryLocation,
        retention: Retention,
        commit_tag: str,
        environments: Sequence[Environment],
    ) -> None:
        """Native retention needs ECR, and protection tags that no other tag can be mistaken for."""
        if registry.kind != "ecr":
            raise self.fail(
                f'"native" needs an ECR registry (registry = "ecr://ACCOUNT.dkr.ecr.REGION.amazonaws.com");'
                f" {registry.kind} registries have no lifecycle policy of their own",
                ["retention", "mode"],
            )
        prefix = retention.protection_prefix
        if commit_tag.format(commit=SAMPLE_SHA).startswith(prefix):
            raise self.fail(
                f"commit tags would start with the protection prefix {prefix!r}: choose another prefix",
                ["retention", "protection_prefix"],
            )
        for i, env in enumerate(environments):
            if env.name in PROTECTION_KINDS:
                raise self.fail(
                    f"{env.name!r} is reserved in native retention (protection tags {prefix}pin-…,"
                    f" {prefix}run-…, {prefix}untag-…): rename the environment",
                    ["environments", i, "name"],
                )
            if env.name.startswith(prefix):
                raise self.fail(
                    f"environment tags would start with the protection prefix {prefix!r}",
                    ["environments", i, "name"],
                )

    def _limits(self, data: Mapping[str, Any]) -> Limits:
        at: list[str | int] = ["limits"]
        self._unknown(data, {"deadline"}, at)
        if "deadline" not in data:
            return Limits()
        text = data["deadline"]
        if not isinstance(text, str):
            raise self.fail('must be a duration such as "90s", "10m" or "1h", or "off"', [*at, "deadline"])
        try:
            return Limits(parse_deadline(text))
        except ValueError as exc:
            raise self.fail(str(exc), [*at, "deadline"]) from exc

    def _evidence(self, data: Mapping[str, Any]) -> tuple[tuple[str, ...], str | None, tuple[str, ...]]:
        """(extra kinds, signing key, verification keys) of `[evidence]`."""
        at: list[str | int] = ["evidence"]
        self._unknown(data, {"kinds", "sign", "verify"}, at)
        kinds = data.get("kinds", [])
        if not isinstance(kinds, list) or not all(_is_evidence_kind(k) for k in kinds):
            raise self.fail('must be a list of evidence kinds such as ["scan", "perf"]', [*at, "kinds"])
        sign = data.get("sign")
        if sign is not None and (not isinstance(sign, str) or not sign.strip()):
            raise self.fail('must be a PEM private key file or "kms:KEY-ID-OR-ARN"', [*at, "sign"])
        verify = data.get("verify", [])
        if isinstance(verify, str):
            verify = [verify]
        if not isinstance(verify, list) or not all(isinstance(v, str) and v.strip() for v in verify):
            raise self.fail(
                'must be a PEM public key file or "kms:KEY-ID-OR-ARN", or a list of them', [*at, "verify"]
            )
        return tuple(kinds), self._key(sign) if sign else None, tuple(self._key(v) for v in verify)

    def _key(self, spec: str) -> str:
        """A key name with a relative file path anchored at the config file's folder."""
        if spec.startswith("kms:"):
            return spec
        path = Path(spec).expanduser()
        return str(path if path.is_absolute() else self.path.resolve().parent / path)

    def _ecr(self, data: Mapping[str, Any]) -> EcrSettings:
        at: list[str | int] = ["ecr"]
        self._unknown(data, {"tag_mutability", "scan_on_push", "lifecycle_policy"}, at)
        mutability = self._choice(
            data,
            "tag_mutability",
            at,
            "MUTABLE",
            ("MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION"),
        )
        scan = self._bool(data, "scan_on_push", at, False)
        policy = data.get("lifecycle_policy")
        if policy is not None and (not isinstance(policy, str) or not policy):
            raise self.fail(
                "must be the path of an ECR lifecycle policy JSON file", [*at, "lifecycle_policy"]
            )
        base = self.path.resolve().parent
        return EcrSettings(mutability, scan, (base / policy) if policy else None)


def _is_evidence_kind(value: object) -> bool:
    try:
        validate_evidence_kind(value)  # type: ignore[arg-type]
    except UsageError:
        return False
    return True


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `12h`, `1d`, `2w` → timedelta; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f'{text!r} is not a duration such as "12h", "1d" or "2w"')
    try:
        duration = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError as exc:
        raise ValueError(f"{text!r} is longer than {MAX_DURATION.days} days") from exc
    if duration > MAX_DURATION:
        raise ValueError(f"{text!r} is longer than {MAX_DURATION.days} days")
    return duration


def _dotted(keypath: Sequence[str | int]) -> str:
    out = ""
    for key in keypath:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


SAMPLE_CONFIG = """\
# boda.toml: how boda finds your registry and ledger, and how images move between environments.

# Where images live: "oci-layout:PATH" (a folder on disk, the embedded default),
# "https://registry.example.com", "http://127.0.0.1:5000" (plain HTTP for loopback only),
# or "ecr://123456789012.dkr.ecr.eu-west-1.amazonaws.com".
registry = "oci-layout:.boda/registry"

# Where the history lives: SQLite for one machine, PostgreSQL when many CI runners share it.
ledger = "sqlite:///.boda/ledger.db"          # or "postgresql://boda@db.example.com:5432/boda"

[promotion]
# "tags": one repository per app; promoting moves the environment's tag (dev, stg, prd) to the
#         digest, and the commit tag stays, so every image stays identifiable.
# "repos": one repository per app and environment (shop/web-prd, ...); promoting copies the
#          digest there (no layer moves on one registry) under its commit tag.
strategy = "tags"
# The immutable tag written at build time. When another commit of the app already holds it (two
# commits sharing their first 8 digits), the build gets {commit:.12} (then .16, ...) and says so.
commit_tag = "{commit:.8}"
repo_template = "{app}-{env}"                # strategy "repos" only

# Environments in promotion order; `after` is the upstream, `requires` the evidence that must
# have passed there before a digest may enter. Environments may form a tree.
[[environments]]
name = "dev"

[[environments]]
name = "stg"
after = "dev"
requires = ["tests"]

[[environments]]
name = "prd"
after = "stg"
requires = ["tests", "signoff"]
# Where prd's images run: what runs there is "in use" and never expires, and `boda runtime scan`
# shows it. ecs:CLUSTER[/SERVICE], lambda:REGION/FUNCTION (or /*), k8s:CONTEXT/NAMESPACE, file:PATH.
# runtimes = ["ecs:prod-cluster", "lambda:eu-west-1/*", "k8s:prod-context/shop"]

# Signed evidence and promotions (boda keys generate; README: Signed evidence and promotion
# attestations): every evidence, promotion and rollback also becomes a signed statement attached
# to the image, checked before deploys with `boda attest verify IMAGE --env prd`.
# [evidence]
# sign = "ci.key.pem"                        # or "kms:arn:aws:kms:REGION:ACCOUNT:key/ID"
# verify = ["ci.pub.pem"]

[retention]
rollback_depth = 3                           # previous digests per environment kept for rollback
min_age = "1d"                               # never expire anything younger
age_from = "push"                            # or "promotion": age counts from the last promotion
# policy = "lifecycle.json"                  # an ECR lifecycle policy for everything unprotected
# mode = "native"                            # ECR's own lifecycle policy deletes (README: Native
#                                            # retention); boda tags what it protects "keep-..."
# With mode = "native", add under [promotion]: untag_replaced = true to untag digests that left
# every rollback window (neither pinned nor running), for an "expire untagged" rule to remove.

# How long one command may take: every registry request ends by then, however slowly a registry
# answers ("90s", "10m", "1h" or "off"; BODA_DEADLINE wins).
# [limits]
# deadline = "30m"
"""
