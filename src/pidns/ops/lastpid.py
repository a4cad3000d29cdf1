"""``ns_last_pid`` of a PID namespace: read it, set it (seed scenario 11).

``/proc/sys/kernel/ns_last_pid`` is the last PID handed out in the PID namespace of
the process that *opens* it: the kernel's handler uses the reader's active PID
namespace, not the namespace of the /proc mount. So another namespace is read through
a helper that lives in it: we fork, the child does ``setns(nsfd, CLONE_NEWPID)`` (which
changes only where its *children* go) and forks again; that grandchild is in the
namespace and opens the file. The grandchild takes a PID there itself, so the value it
reads is (usually) its own PID. For the caller's own namespace no helper is needed.

Writing needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE) over the user namespace that
owns the PID namespace. Writing N makes the next process created there get N+1 (unless
N+1 is taken). The helper is created before the write, so it does not consume N+1.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass
from typing import Final

from pidns._kernel import consts
from pidns._kernel import sys as ksys
from pidns.errors import NotFound, PidnsError, UsageError, from_oserror
from pidns.ops import nsref
from pidns.ops.nsref import NsRef

NS_LAST_PID: Final = "/proc/sys/kernel/ns_last_pid"
#: pid_max can be raised to 4194304 (PID_MAX_LIMIT on 64-bit).
PID_MAX_LIMIT: Final = 4194304


@dataclass(frozen=True, slots=True)
class LastPid:
    """The result of a read or a write.

    ``value`` is ns_last_pid as read (after the write, if any). ``helper_pid`` is the
    PID the helper took inside the namespace (None when the caller's own namespace was
    read directly, without a helper).
    """

    ns: NsRef
    value: int
    helper_pid: int | None
    written: int | None = None


def _rw(value: int | None) -> int:
    if value is not None:
        with open(NS_LAST_PID, "w") as f:
            f.write(str(value))
    with open(NS_LAST_PID) as f:
        return int(f.read().strip())


def _enter_pidns(ref: NsRef) -> None:
    """In a forked child: setns into ref's PID namespace (its owner user ns first if
    plain setns is refused, as for a rootless container's namespace)."""
    try:
        ksys.setns(ref.fd(), consts.CLONE_NEWPID)
        return
    except OSError as exc:
        if exc.errno != errno.EPERM:
            raise
    ufd = ksys.ns_get_userns(ref.fd())
    ksys.setns(ufd, consts.CLONE_NEWUSER)
    ksys.setns(ref.fd(), consts.CLONE_NEWPID)


def _helper(ref: NsRef, value: int | None) -> tuple[int, int]:
    """Run the read/write in a grandchild inside ``ref``; return (value, its PID)."""
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:  # child, still in our namespace
        os.close(rfd)
        code = 0
        try:
            try:
                _enter_pidns(ref)
                grandchild = os.fork()
                if grandchild == 0:  # grandchild: inside the target namespace
                    msg: dict[str, int | str]
                    try:
                        got = _rw(value)
                        msg = {"value": got, "pid": os.getpid()}
                    except OSError as exc:
                        msg = {"errno": exc.errno or 0, "step": "rw"}
                    os.write(wfd, json.dumps(msg).encode())
                    os._exit(0)
                _, status = os.waitpid(grandchild, 0)
                code = 0 if os.waitstatus_to_exitcode(status) == 0 else 1
            except OSError as exc:
                os.write(wfd, json.dumps({"errno": exc.errno or 0, "step": "enter"}).encode())
        finally:
            os._exit(code)
    os.close(wfd)
    try:
        chunks = []
        while chunk := os.read(rfd, 4096):
            chunks.append(chunk)
    finally:
        os.close(rfd)
        os.waitpid(child, 0)
    raw = b"".join(chunks)
    if not raw:
        raise PidnsError(f"read ns_last_pid of {ref.label()}", "the helper died silently",
                         hint="run with --debug and report it")
    msg = json.loads(raw)
    if "errno" in msg:
        n = int(msg["errno"])
        action = (f"enter {ref.label()}" if msg["step"] == "enter"
                  else f"{'write' if value is not None else 'read'} {NS_LAST_PID} in "
                  f"{ref.label()}")
        hint = None
        if n == errno.ENOMEM and msg["step"] == "enter":
            hint = "the namespace's PID 1 has exited: no process can be created there"
        elif n in (errno.EPERM, errno.EACCES):
            hint = "needs CAP_SYS_ADMIN over the user namespace owning that PID namespace"
        raise from_oserror(action, OSError(n, os.strerror(n)), hint=hint)
    return int(msg["value"]), int(msg["pid"])


def _check_value(value: int) -> None:
    if not 0 <= value < PID_MAX_LIMIT:
        raise UsageError(f"set ns_last_pid to {value}",
                         f"must be between 0 and {PID_MAX_LIMIT - 1}",
                         hint="the next process gets N+1; see /proc/sys/kernel/pid_max")


def last_pid(ns: str | NsRef = "host", *, set_to: int | None = None) -> LastPid:
    """Read (or with ``set_to`` write, then read back) ns_last_pid of namespace ``ns``.

    Raises:
        NotFound: ``ns`` does not resolve.
        PermissionDenied: writing without CAP_SYS_ADMIN over the namespace's owner.
        PidnsError: the namespace cannot be entered (e.g. its PID 1 has exited).
    """
    if set_to is not None:
        _check_value(set_to)
    ref = nsref.resolve(ns)
    if ref.is_caller():
        verb = "write" if set_to is not None else "read"
        try:
            return LastPid(ref, _rw(set_to), None, set_to)
        except OSError as exc:
            hint = ("needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE) over the user "
                    "namespace owning this PID namespace: run as root"
                    if exc.errno in (errno.EPERM, errno.EACCES) else None)
            raise from_oserror(f"{verb} {NS_LAST_PID}", exc, hint=hint) from exc
    if not ref.is_caller() and ref.ancestry()[-1] != nsref.caller_ns_id():
        raise NotFound(f"enter {ref.label()}", "it is not the caller's namespace nor below it",
                       hint="run from an ancestor namespace (e.g. the host)")
    value, helper = _helper(ref, set_to)
    return LastPid(ref, value, helper, set_to)
