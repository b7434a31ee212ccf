"""Named exclusive locks shared by every process of one ledger, held outside any transaction.

A command holds an app's lock across its registry I/O (promote, rollback, gc apply, repair), so no
database write lock is ever held while a registry answers slowly, and a slow registry for one app
never delays another app. Names are taken in sorted order, so two commands never deadlock; a
thread that holds a name may take it again (it is counted). A waiter that gives up raises
`LockTimeout`: exit 5 (Conflict), because another command is changing the same thing; the message
names the holder (pid, host, since when, what it does) when that is known.

Where the locks live:
- SQLite file: `fcntl.flock` on one file per name in the folder `<ledger file>.locks/`; the file
  holds its holder's description. The kernel drops the lock when the holder exits or is killed.
  The files are never deleted (deleting a file others may be waiting on would break the lock).
- SQLite `:memory:`: locks of this process only (nobody else can open that ledger).
- PostgreSQL: session-level `pg_advisory_lock` on a connection of its own, idle and outside any
  transaction while held (`postgres.AdvisoryLocks`); the server drops it if the process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boda.errors import Conflict, LedgerError

DEFAULT_TIMEOUT_S = 60.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
Release = Callable[[], None]


def app_lock_name(app: str) -> str:
    """The lock name of an app (what `Ledger.lock_apps` takes)."""
    return f"app {app}"


def build_tags_lock_name(app: str) -> str:
    """The lock name of an app's commit tags (what `Ledger.lock_build_tags` takes)."""
    return f"build-tags {app}"


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as far as it is known."""

    pid: int | None = None
    host: str | None = None
    since: datetime | None = None
    purpose: str = ""

    @classmethod
    def me(cls, purpose: str) -> Holder:
        """This process, from now on."""
        return cls(os.getpid(), socket.gethostname(), datetime.now(UTC), purpose)

    def describe(self) -> str:
        """`pid 12 on ci-3 since 2025-01-31 12:00:00 UTC (promote to prd)`, or what is known of it."""
        parts = []
        if self.pid is not None:
            parts.append(f"pid {self.pid}")
        if self.host:
            parts.append(f"on {self.host}")
        if self.since is not None:
            parts.append(f"since {self.since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")
        if self.purpose:
            parts.append(f"({self.purpose})")
        return " ".join(parts) or "another process"

    def to_json(self) -> dict[str, Any]:
        """JSON form (what a lock file holds)."""
        return {
            "pid": self.pid,
            "host": self.host,
            "since": self.since.isoformat() if self.since else None,
            "purpose": self.purpose,
        }

    @classmethod
    def from_json(cls, data: Any) -> Holder | None:
        """The holder a lock file describes; None when it describes nothing usable."""
        if not isinstance(data, dict):
            return None
        try:
            since = datetime.fromisoformat(data["since"]) if data.get("since") else None
            pid = data.get("pid")
            return cls(
                int(pid) if pid is not None else None,
                str(data.get("host") or "") or None,
                since,
                str(data.get("purpose") or ""),
            )
        except (TypeError, ValueError):
            return None


class LockTimeout(Conflict):
    """A lock stayed held by another command for longer than the caller would wait (exit 5)."""

    def __init__(self, name: str, holder: Holder | None, timeout: float) -> None:
        super().__init__(
            f"{name} is locked by {holder.describe() if holder else 'another process'};"
            f" gave up waiting after {timeout:g} s",
            hint="another boda command is changing it; retry when that one ends",
        )
        self.name = name
        self.holder = holder


@dataclass
class _Owner:
    thread: int
    count: int
    holder: Holder


class NamedLocks(ABC):
    """Exclusive locks by name: per thread within this process, then across processes."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._owners: dict[str, _Owner] = {}

    @contextmanager
    def hold(
        self, names: Iterable[str], *, timeout: float = DEFAULT_TIMEOUT_S, purpose: str = ""
    ) -> Iterator[None]:
        """Hold every lock of `names` for the block; LockTimeout after `timeout` seconds of waiting."""
        wanted = sorted(set(names))
        deadline = time.monotonic() + max(timeout, 0.0)
        me = Holder.me(purpose)
        fresh = self._take_here(wanted, deadline, me, timeout)
        try:
            release = self._acquire(fresh, deadline, me, timeout) if fresh else _nothing
        except BaseException:
            self._give_here(wanted)
            raise
        try:
            yield
        finally:
            try:
                release()
            finally:
                self._give_here(wanted)

    def _take_here(self, wanted: list[str], deadline: float, me: Holder, timeout: float) -> list[str]:
        """Take `wanted` among this process's threads; returns those this thread did not hold yet."""
        thread = threading.get_ident()
        taken: list[str] = []
        fresh: list[str] = []
        with self._changed:
            try:
                for name in wanted:
                    while True:
                        owner = self._owners.get(name)
                        if owner is None:
                            self._owners[name] = _Owner(thread, 1, me)
                            fresh.append(name)
                            break
                        if owner.thread == thread:
                            owner.count += 1
                            break
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise LockTimeout(name, owner.holder, timeout)
                        self._changed.wait(remaining)
                    taken.append(name)
            except BaseException:
                self._give_here_locked(taken)
                raise
        return fresh

    def _give_here(self, names: list[str]) -> None:
        with self._changed:
            self._give_here_locked(names)

    def _give_here_locked(self, names: list[str]) -> None:
        for name in names:
            owner = self._owners[name]
            owner.count -= 1
            if owner.count == 0:
                del self._owners[name]
        self._changed.notify_all()

    @abstractmethod
    def _acquire(self, names: list[str], deadline: float, me: Holder, timeout: float) -> Release:
        """Take `names` (sorted) across processes by `deadline`; return what releases them."""

    @abstractmethod
    def probe(self) -> None:
        """Raise LedgerError if locks cannot be taken here (a lock folder that cannot be written)."""

    @abstractmethod
    def close(self) -> None:
        """Free what the locks keep open (held locks are released by their blocks)."""


def _nothing() -> None:
    pass


class ProcessLocks(NamedLocks):
    """Locks of one process only: for a ledger no other process can open (`:memory:`)."""

    def _acquire(self, names: list[str], deadline: float, me: Holder, timeout: float) -> Release:
        return _nothing

    def probe(self) -> None:
        """Nothing can stop in-process locks."""

    def close(self) -> None:
        """Nothing is kept open."""


class FileLocks(NamedLocks):
    """`flock` on one file per name in `folder`, each file describing its holder."""

    def __init__(self, folder: Path, display: str) -> None:
        super().__init__()
        self.folder = folder
        self._display = display

    def path(self, name: str) -> Path:
        """The lock file of `name`: readable, and unique even when two names read the same."""
        readable = _UNSAFE.sub("_", name).strip("_")[:80]
        suffix = hashlib.blake2b(name.encode(), digest_size=6).hexdigest()
        return self.folder / f"{readable}-{suffix}.lock"

    def _open(self, name: str) -> int:
        path = self.path(name)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except PermissionError:  # another user's lock file: flock works on a read-only one too
                return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise LedgerError(
                f"ledger {self._display}: cannot open the lock file {path}: {exc.strerror or exc}"
            ) from exc

    def _acquire(self, names: list[str], deadline: float, me: Holder, timeout: float) -> Release:
        fds: list[int] = []
        try:
            for name in names:
                fd = self._open(name)
                try:
                    self._wait(fd, name, deadline, timeout)
                except BaseException:
                    os.close(fd)  # not ours: its holder's description stays
                    raise
                fds.append(fd)
                _describe_holder(fd, me)
        except BaseException:
            _close_all(fds)
            raise

        def release() -> None:
            _close_all(fds)

        return release

    def _wait(self, fd: int, name: str, deadline: float, timeout: float) -> None:
        pause = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            except OSError as exc:
                raise LedgerError(
                    f"ledger {self._display}: cannot lock {self.path(name)}: {exc.strerror or exc}"
                ) from exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockTimeout(name, _read_holder(fd), timeout)
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.05)

    def probe(self) -> None:
        os.close(self._open("write probe"))

    def close(self) -> None:
        """Nothing is kept open between holds."""


def _describe_holder(fd: int, me: Holder) -> None:
    """Write who holds the lock into its file (best effort: a read-only file stays blank)."""
    with suppress(OSError):
        data = json.dumps(me.to_json()).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)


def _read_holder(fd: int) -> Holder | None:
    try:
        data = os.pread(fd, 4096, 0)
        return Holder.from_json(json.loads(data)) if data else None
    except (OSError, ValueError):
        return None


def _close_all(fds: list[int]) -> None:
    """Release the locks: blank each holder description, then close (which drops the flock)."""
    for fd in reversed(fds):
        with suppress(OSError):
            os.ftruncate(fd, 0)
        with suppress(OSError):
            os.close(fd)
