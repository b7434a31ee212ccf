"""Pins: digests protected from expiry by hand until unpinned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boda.errors import UsageError
from boda.services.context import Context, identity
from boda.services.expiry.plan import require_known_app
from boda.types import Digest, check_free_text


@dataclass(frozen=True)
class PinResult:
    """A digest of an app pinned (with why) or unpinned."""

    app: str
    digest: Digest
    pinned: bool
    #: Why it must stay (a pin only).
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        why = {"reason": self.reason} if self.pinned else {}
        return {"app": self.app, "digest": str(self.digest), **why, "pinned": self.pinned}


def pin(ctx: Context, app: str, digest: str, *, reason: str, by: str | None = None) -> PinResult:
    """Protect a digest of `app` from expiry until unpinned."""
    if not check_free_text(reason, "the reason").strip():
        raise UsageError("a pin needs a reason: say why the image must stay")
    actor = identity(by)
    require_known_app(ctx, app)
    wanted = Digest.parse(digest)
    ctx.ledger.pin(app=app, digest=wanted, reason=reason, by=actor)
    _follow(ctx, app, by)  # native retention: the pin's protection tag (see _follow)
    return PinResult(app, wanted, True, reason)


def unpin(ctx: Context, app: str, digest: str, *, by: str | None = None) -> PinResult:
    """Remove a pin (NotFound when the digest is not pinned)."""
    actor = identity(by)
    require_known_app(ctx, app)
    wanted = Digest.parse(digest)
    ctx.ledger.unpin(app=app, digest=wanted, by=actor)
    _follow(ctx, app, by)  # native retention: the pin's protection tag goes (see _follow)
    return PinResult(app, wanted, False)


def _follow(ctx: Context, app: str, by: str | None) -> None:
    """Native retention (boda.services.native_retention): the pin is recorded, so the app's
    protection tags follow it; nothing in [retention] mode "boda"."""
    if ctx.config.retention.mode == "native":
        from boda.services.native_retention import follow

        follow(ctx, [app], by=identity(by))
