"""The exception hierarchy of pidns; errno -> class and hint, once.

Every error pidns raises on purpose is a :class:`PidnsError`; ``str()`` of one is a
complete user-facing sentence, ``cannot ACTION: REASON; hint: FIX``, which the CLI
prints after ``pidns: ``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Final


class ExitStatus(IntEnum):
    """Exit statuses of the ``pidns`` command (see README: "Exit status")."""

    OK = 0
    NOT_FOUND = 1  # the target or PID asked about does not exist / cannot be seen / refused
    FAILED = 125  # pidns itself failed: bad usage, namespace not made, state not written
    NOT_RUNNABLE = 126
    NO_COMMAND = 127


class PidnsError(Exception):
    """Base for every error pidns raises on purpose.

    ``str()`` is ``cannot ACTION: REASON; hint: FIX``. ``status`` is the exit status
    the CLI uses for it.
    """

    status: ExitStatus = ExitStatus.FAILED

    def __init__(
        self,
        action: str,
        reason: str,
        *,
        pid: int | None = None,
        errnum: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(action, reason)
        self.action = action
        self.reason = reason
        self.pid = pid
        self.errnum = errnum
        self.hint = hint

    def __str__(self) -> str:
        tail = f"; hint: {self.hint}" if self.hint else ""
        return f"cannot {self.action}: {self.reason}{tail}"


class UsageError(PidnsError):
    """Bad command-line usage or a bad argument value."""


class PermissionDenied(PidnsError):
    """The kernel refused (EPERM/EACCES)."""


class NoSuchProcess(PidnsError):
    """The process is gone, or never was (ESRCH/ENOENT under /proc)."""

    status = ExitStatus.NOT_FOUND


class NotFound(PidnsError):
    """A namespace, container or PID that was asked about does not exist or is not visible."""

    status = ExitStatus.NOT_FOUND


class Refused(PidnsError):
    """A request that pidns declines on purpose (e.g. rm of a running container without -f)."""

    status = ExitStatus.NOT_FOUND


class Unsupported(PidnsError):
    """The kernel lacks the feature (ENOSYS, ENOTTY, EINVAL on a flag)."""


class NamespaceLimit(PidnsError):
    """A namespace limit was hit (ENOSPC, EUSERS, nesting deeper than 32)."""


class ParseError(PidnsError):
    """A /proc file (or a state file) did not have the expected shape."""


class TimeoutExpired(PidnsError):
    """``wait(timeout=...)`` ran out; same meaning as subprocess.TimeoutExpired."""

    def __init__(self, cmd: object, timeout: float) -> None:
        super().__init__(
            f"wait for {cmd!r}", f"still running after {timeout:g} s",
            hint="call kill() or wait longer",
        )
        self.cmd = cmd
        self.timeout = timeout


_CLASS: Final[dict[int, type[PidnsError]]] = {
    errno.EPERM: PermissionDenied,
    errno.EACCES: PermissionDenied,
    errno.ESRCH: NoSuchProcess,
    errno.ENOSPC: NamespaceLimit,
    errno.EUSERS: NamespaceLimit,
    errno.ENOSYS: Unsupported,
    errno.ENOTTY: Unsupported,
}

_HINT: Final[dict[int, str]] = {
    errno.EPERM: "needs CAP_SYS_ADMIN: run as root, or add --user",
    errno.EACCES: "run as root, or as the owner of the process",
    errno.ENOSPC: "a namespace limit was hit; see /proc/sys/user/max_pid_namespaces "
    "and the nesting limit of 32",
    errno.EUSERS: "the user-namespace nesting limit (32) was hit",
    errno.ENOSYS: "this kernel lacks the feature; see `pidns doctor`",
    errno.ENOTTY: "this kernel lacks the ioctl; see `pidns doctor`",
    errno.ESRCH: "the process has exited; list live ones with `pidns ps`",
}


def from_oserror(
    action: str, exc: OSError, *, pid: int | None = None, hint: str | None = None
) -> PidnsError:
    """Return the PidnsError matching ``exc.errno`` (the caller raises it ``from exc``)."""
    n = exc.errno or 0
    reason = exc.strerror or os.strerror(n) if n else str(exc)
    cls = _CLASS.get(n, PidnsError)
    if n == errno.ENOENT and pid is not None:
        cls = NoSuchProcess
    return cls(action, reason, pid=pid, errnum=n, hint=hint or _HINT.get(n))


@contextmanager
def os_errors(action: str, *, pid: int | None = None, hint: str | None = None) -> Iterator[None]:
    """Re-raise any OSError from the block as the matching :class:`PidnsError`."""
    try:
        yield
    except OSError as exc:
        raise from_oserror(action, exc, pid=pid, hint=hint) from exc
