"""One error tree for boda; every error knows its exit code and says what to do.

    BodaError                      exit 1  unexpected failure
    ├── UsageError                 exit 2  bad input: usage, reference, digest, config, policy
    │   ├── ReferenceError_                a malformed image reference or digest
    │   ├── ConfigError                    a malformed boda.toml (names file, key and line)
    │   └── PolicyError                    an invalid lifecycle policy (names rule and field)
    ├── Refused                    exit 3  a gate, an unsafe expiry, a protected image
    ├── NotFound                   exit 4  unknown app, environment, commit, tag or manifest
    ├── Conflict                   exit 5  a concurrent change, an immutable tag that would move,
    │   └── DigestMismatch                 a digest that is not the one expected
    └── Unavailable                exit 6  registry or ledger unreachable or failing
        ├── RegistryError                  an HTTP/API failure with method, redacted URL, status, codes
        │   └── UnusableManifest           what a registry serves as a manifest is none (bad JSON, size)
        └── LedgerError                    the ledger database failed

Messages are one line; `diagnostics()` appends the hint, still on that line. The error that
caused one (a driver's, botocore's, httpx's) is chained as `__cause__`; `BODA_DEBUG=1` prints the
whole chain. `reasons` lists every reason of a refusal (a gate's, for instance).
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_NOT_FOUND = 4
EXIT_CONFLICT = 5
EXIT_UNAVAILABLE = 6


class BodaError(Exception):
    """Base of every error boda raises on purpose."""

    exit_code = EXIT_FAILURE
    #: A stable name for scripts (`--json` errors), one per exit code.
    code = "failure"

    def __init__(self, message: str, *, hint: str | None = None, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.reasons = tuple(reasons)

    def diagnostics(self) -> str:
        """The message for a person on one line, with the hint after it when there is one."""
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"

    def to_json(self) -> dict[str, object]:
        """The error as scripts read it with `--json`."""
        return {
            "code": self.code,
            "exit_code": self.exit_code,
            "message": self.message,
            "hint": self.hint,
            "reasons": list(self.reasons),
        }


class UsageError(BodaError, ValueError):
    """Bad input: the command line, a reference, a digest, the config or a policy."""

    exit_code = EXIT_USAGE
    code = "usage"


class ReferenceError_(UsageError):  # noqa: N801 - avoid shadowing the builtin ReferenceError
    """A malformed image reference, repository name, tag or digest."""


class ConfigError(UsageError):
    """A malformed configuration file."""


class PolicyError(UsageError):
    """An invalid lifecycle policy or images document."""


class Refused(BodaError):
    """The operation is not allowed: a gate failed or an image is protected."""

    exit_code = EXIT_REFUSED
    code = "refused"


class NotFound(BodaError, LookupError):
    """Something named does not exist."""

    exit_code = EXIT_NOT_FOUND
    code = "not_found"


class Conflict(BodaError):
    """The state changed under us, or the change would move something immutable."""

    exit_code = EXIT_CONFLICT
    code = "conflict"


class DigestMismatch(Conflict):
    """Content does not hash to the digest it was asked for or reported under."""


class Unavailable(BodaError):
    """A registry or the ledger could not be reached or failed."""

    exit_code = EXIT_UNAVAILABLE
    code = "unavailable"


@dataclass(frozen=True)
class RegistryDiagnostic:
    """One entry of an OCI error body: `{"code", "message", "detail"}`."""

    code: str
    message: str = ""
    detail: object = field(default=None, compare=False)


class RegistryError(Unavailable):
    """A registry request failed: carries method, redacted URL, status and error codes."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: str = "",
        status: int | None = None,
        codes: tuple[RegistryDiagnostic, ...] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.method = method
        self.url = url
        self.status = status
        self.codes = codes

    @property
    def code_names(self) -> tuple[str, ...]:
        """Just the error code names, e.g. `("MANIFEST_UNKNOWN",)`."""
        return tuple(c.code for c in self.codes)


class UnusableManifest(RegistryError):
    """A registry served bytes for a manifest that are no usable manifest (not a JSON object, over
    the size limit, nested too deep, an unknown media type)."""


class RegistryNotFound(RegistryError, NotFound):
    """The registry answered 404 for a manifest, blob or repository."""

    exit_code = EXIT_NOT_FOUND
    code = "not_found"


class RegistryDenied(RegistryError):
    """The registry refused our credentials (401/403)."""

    exit_code = EXIT_UNAVAILABLE


class LedgerError(Unavailable):
    """The ledger database could not be read or written."""
