"""PID translation between PID namespaces (DESIGN.md "Translate", seed scenario 5).

``translate(pid, src, dst)`` answers "what is PID ``pid`` of ``src`` called in ``dst``?"
in two steps through the caller's namespace, the common ancestor of every namespace
the caller can name (setns(2) and /proc only ever reach downwards):

1. src view -> caller view: ``NS_GET_PID_FROM_PIDNS`` on src's nsfs fd;
2. caller view -> dst view: ``NS_GET_PID_IN_PIDNS`` on dst's nsfs fd.

Both ioctls arrived in Linux 6.11 and cost one syscall each; the resolved
:class:`~pidns.ops.nsref.NsRef` keeps its fd open, so a call stays O(1) however many
processes there are. Sibling namespaces translate through the caller's namespace the
same way. On older kernels (ENOTTY/EINVAL) the fallback reads the NSpid chains of
/proc (``/proc/PID/status``) and places each level with ``NS_GET_PARENT`` (Linux 4.9):
correct, but a scan of /proc per lookup from a non-host namespace.

Thread IDs work on the ioctl path (the kernel looks up any task); the fallback
only knows thread-group leaders (the PIDs /proc lists).

Set :data:`USE_IOCTL` to False (or pass ``fast=False``) to force the fallback; the
tests check that both paths agree on every live process.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from pidns._kernel import sys as ksys
from pidns.errors import NoSuchProcess, NotFound, PidnsError, Unsupported, UsageError
from pidns.ops import nsref
from pidns.ops.nsref import NsRef
from pidns.procfs.model import NsId
from pidns.procfs.reader import ProcFS

#: Module switch: False forces the /proc fallback everywhere (tests, old kernels).
#: Flipped to False automatically the first time the kernel answers ENOTTY/EINVAL.
USE_IOCTL: bool = True

Ref = str | NsRef


@dataclass(frozen=True, slots=True)
class Level:
    """One PID of a process: its ``level`` below the caller's namespace (0 = ours), the
    PID it has there, the namespace, and the container owning that namespace if any."""

    level: int
    pid: int
    ns: NsId | None
    container: str | None = None
    engine: str | None = None


def _check_pid(pid: int) -> None:
    if isinstance(pid, bool) or pid < 1:
        raise UsageError(f"translate pid {pid!r}", "a PID is a positive integer",
                         hint="e.g. pidns translate 1 --from pid:4242")


def translate(pid: int, src: Ref = "host", dst: Ref = "host", *,
              fast: bool | None = None) -> int:
    """PID ``pid`` as seen in ``src`` -> the same process's PID as seen in ``dst``.

    ``src``/``dst`` are NSREF strings or resolved :class:`NsRef` objects (resolve once
    and reuse them for speed: the ref caches its nsfs fd). Both default to ``host``,
    the caller's namespace. ``fast`` picks the ioctl path (True) or the /proc fallback
    (False); None follows :data:`USE_IOCTL`.

    Raises:
        NotFound: no such process in ``src``, or ``dst`` cannot see it (the message says
            why: an ancestor or a sibling branch of ``dst``).
        UsageError: ``pid`` is not a positive integer, or a malformed NSREF.
    """
    _check_pid(pid)
    s = src if isinstance(src, NsRef) else nsref.resolve(src)
    d = dst if isinstance(dst, NsRef) else nsref.resolve(dst)
    if USE_IOCTL if fast is None else fast:
        try:
            hp = pid if s.is_caller() else ksys.ns_pid_from_pidns(s.fd(), pid)
        except OSError as exc:
            if not _ioctl_missing(exc):
                raise _src_error(pid, s, exc) from exc
        else:
            try:
                return ksys.ns_pid_in_pidns(d.fd(), hp)
            except OSError as exc:
                if not _ioctl_missing(exc):
                    raise _dst_error(pid, hp, s, d, exc) from exc
    return _dst_view_slow(pid, _caller_view_slow(pid, s), s, d)


def to_host(pid: int, src: Ref) -> int:
    """``translate(pid, src, "host")``: the caller's view of ``src``'s PID ``pid``."""
    return translate(pid, src, "host")


def pid_in(pid: int, dst: Ref) -> int:
    """``translate(pid, "host", dst)``: what ``dst`` calls the caller's PID ``pid``."""
    return translate(pid, "host", dst)


def _ioctl_missing(exc: OSError) -> bool:
    # ENOTTY: nsfs without the 6.11 ioctls. EINVAL would also mean "not a PID ns fd",
    # which resolve() has already ruled out.
    global USE_IOCTL
    if ksys.is_enosys(exc) or exc.errno == errno.EINVAL:
        USE_IOCTL = False
        return True
    return False


# ---------------------------------------------------------------- explaining ESRCH

def _ns_of_pid(pid: int) -> tuple[NsId, ...] | None:
    """Ancestry (innermost first) of the namespace of caller-view ``pid``; None if unseen."""
    try:
        fd = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return nsref.ancestry_of_fd(fd)
    finally:
        os.close(fd)


def _reaches_caller(anc: tuple[NsId, ...]) -> bool:
    return anc[-1] == nsref.caller_ns_id()


def _src_error(pid: int, s: NsRef, exc: OSError | None) -> PidnsError:
    action = f"translate pid {pid} from {s.label()}"
    n = exc.errno if exc is not None else None
    if not s.is_caller() and not _reaches_caller(s.ancestry()):
        return NotFound(action, f"{s.label()} is not the caller's namespace nor below it: "
                        "its processes are invisible from here", pid=pid, errnum=n,
                        hint="run pidns from that namespace or an ancestor of it")
    return NotFound(action, f"no process {pid} in {s.label()}", pid=pid, errnum=n,
                    hint=f"list its processes with `pidns ps --ns {s.spec}`")


def _dst_error(pid: int, hp: int, s: NsRef, d: NsRef, exc: OSError | None) -> PidnsError:
    who = f"pid {pid}" if s.is_caller() else f"pid {pid} of {s.label()} (pid {hp} here)"
    action = f"translate pid {pid} to {d.label()}"
    n = exc.errno if exc is not None else None
    anc_p = _ns_of_pid(hp)
    if anc_p is None:
        if not os.path.exists(f"/proc/{hp}"):
            if s.is_caller():
                return _src_error(pid, s, exc)
            return NotFound(action, f"no process {hp} in the caller's namespace", pid=pid,
                            errnum=n, hint="list processes with `pidns ps`")
        return NotFound(action, f"{who} is not visible: /proc/{hp}/ns/pid cannot be read",
                        pid=pid, errnum=n, hint="run as root")
    anc_d = d.ancestry()
    if anc_p[0] in anc_d:
        reason = f"{who} lives in an ancestor of {d.label()}: invisible from inside"
    elif not _reaches_caller(anc_d):
        reason = f"{d.label()} is not the caller's namespace nor below it"
    else:
        common = next((ns for ns in anc_p if ns in anc_d), None)
        via = f" (common ancestor pid:[{common.ino}])" if common is not None else ""
        reason = (f"{who} lives in pid:[{anc_p[0].ino}], a sibling branch of "
                  f"{d.label()}{via}: invisible from there")
    return NotFound(action, reason, pid=pid, errnum=n,
                    hint="translate to a namespace that contains the process "
                    "(see `pidns translate -a`)")


# ---------------------------------------------------------------- the /proc fallback

def _check_proc_is_ours(procfs: ProcFS) -> None:
    # The fallback reads NSpid from /proc, whose first entry is in the view of the PID
    # namespace that mounted /proc; that must be the caller's (not after a bare
    # `unshare -p` without --mount-proc).
    try:
        me = int(os.readlink(f"{procfs.root}/self"))
    except (OSError, ValueError) as exc:
        raise Unsupported("translate PIDs through /proc", f"{procfs.root}/self is unreadable",
                          hint="mount a procfs for this namespace") from exc
    if me != os.getpid():
        raise Unsupported("translate PIDs through /proc",
                          f"{procfs.root} belongs to another PID namespace (it calls us "
                          f"{me}, we are {os.getpid()})",
                          hint="mount a fresh procfs (unshare --mount-proc)")


def _caller_view_slow(pid: int, s: NsRef) -> int:
    """src-view ``pid`` -> caller view, from /proc NSpid chains."""
    procfs = ProcFS()
    _check_proc_is_ours(procfs)
    if s.is_caller():
        try:
            procfs.read_status(pid)
        except PidnsError as exc:
            raise _src_error(pid, s, None) from exc
        return pid
    anc_s = s.ancestry()
    if not _reaches_caller(anc_s):
        raise _src_error(pid, s, None)
    depth = len(anc_s) - 1  # src's level below the caller's namespace
    for cand in procfs.pids():
        try:
            st = procfs.read_status(cand)
        except PidnsError:
            continue
        if len(st.nspid) <= depth or st.nspid[depth] != pid:
            continue
        # Same number at that level: check that level really is src (not a sibling).
        anc = _ns_of_pid(cand)
        inner = len(st.nspid) - 1
        if anc is not None and len(anc) > inner - depth and anc[inner - depth] == s.id:
            return cand
    raise _src_error(pid, s, None)


def _dst_view_slow(pid: int, hp: int, s: NsRef, d: NsRef) -> int:
    """caller-view ``hp`` -> dst view, from its /proc NSpid chain."""
    procfs = ProcFS()
    try:
        st = procfs.read_status(hp)
    except PidnsError as exc:
        raise _src_error(pid, s, None) from exc
    if d.is_caller():
        return hp
    anc_d = d.ancestry()
    if not _reaches_caller(anc_d):
        raise Unsupported(f"translate pid {pid} to {d.label()}",
                          "the /proc fallback cannot see above the caller's namespace",
                          hint="this needs the NS_GET_PID_IN_PIDNS ioctl (Linux 6.11)")
    depth = len(anc_d) - 1
    anc_p = _ns_of_pid(hp)
    inner = len(st.nspid) - 1
    if anc_p is not None and depth <= inner and len(anc_p) > inner - depth \
            and anc_p[inner - depth] == d.id:
        return st.nspid[depth]
    raise _dst_error(pid, hp, s, d, None)


# ---------------------------------------------------------------- translate -a

def chain(pid: int, src: Ref = "host") -> tuple[Level, ...]:
    """Every PID of the process ``pid`` (as ``src`` sees it), outermost first.

    Level 0 is the caller's namespace; each level names its namespace and, where a
    container plug-in knows it, the container owning it.

    Raises:
        NotFound: no such process in ``src``. NoSuchProcess: it exited meanwhile.
    """
    hp = translate(pid, src, "host")
    try:
        st = ProcFS().read_status(hp)
    except NoSuchProcess as exc:
        raise NotFound(f"list the PIDs of pid {pid}", "the process exited meanwhile",
                       pid=pid) from exc
    anc = _ns_of_pid(hp)
    outer_first = tuple(reversed(anc)) if anc is not None else ()
    levels = []
    for i, p in enumerate(st.nspid):
        ns = outer_first[i] if len(outer_first) == len(st.nspid) else None
        owner = nsref.container_of(ns) if ns is not None else None
        levels.append(Level(level=i, pid=p, ns=ns,
                            container=owner[1] if owner else None,
                            engine=owner[0] if owner else None))
    return tuple(levels)
