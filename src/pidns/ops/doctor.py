"""``pidns doctor``: what this kernel and this user can do with PID namespaces.

Each :class:`Check` says ``ok``, ``missing``, ``blocked`` or ``unknown``, why, and the
exact command that fixes it. *Essential* checks are what ``pidns run`` needs for this
user: PID namespace support, a non-zero ``max_pid_namespaces``, and a way to make one
(CAP_SYS_ADMIN, or unprivileged user namespaces). Everything else (the translation
ioctls, pidfd, clone3 set_tid, ...) has a slower fallback or only limits a feature.

Probes run for real: an ioctl on our own namespace, a pidfd on ourselves, and for the
namespace and clone3 probes a forked throwaway child (which makes a namespace and exits).
Sysctls are read under ``sysctl_root`` (injectable for tests).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from pidns._kernel import consts
from pidns._kernel import sys as ksys

Status = Literal["ok", "missing", "blocked", "unknown", "info"]

SYSCTL_ROOT: Final = "/proc/sys"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    essential: bool = False


def _sysctl(root: str, name: str) -> int | None:
    """An integer sysctl (``kernel.x`` -> ROOT/kernel/x), None when absent/unreadable."""
    try:
        with open(f"{root}/{name.replace('.', '/')}") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _in_child(fn: Callable[[], int]) -> int:
    """Run ``fn`` in a forked child; return its result (an errno, 0 for success)."""
    pid = os.fork()
    if pid == 0:
        code = 255
        try:
            code = fn()
        except OSError as exc:
            code = exc.errno or 255
        except BaseException:  # noqa: BLE001 - the child must never return into our caller
            code = 254
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    return rc if rc >= 0 else 253


def _new_pidns_flags() -> int:
    if ksys.has_cap_sys_admin():
        return consts.CLONE_NEWPID
    return consts.CLONE_NEWUSER | consts.CLONE_NEWPID


def _probe_pidns() -> int:
    """In a child: unshare a PID namespace (through a user namespace when unprivileged)
    and check that our next child is PID 1 there."""
    ksys.unshare(_new_pidns_flags())
    pid = os.fork()
    if pid == 0:
        os._exit(0 if os.getpid() == 1 else 1)
    _, status = os.waitpid(pid, 0)
    return 0 if os.waitstatus_to_exitcode(status) == 0 else errno.EPROTO


def _probe_clone3() -> int:
    """In a child: a fresh PID namespace, then clone3 asking for PID 1 in it."""
    ksys.unshare(_new_pidns_flags())
    pid = ksys.clone3_set_tid(0, [1])
    os.waitpid(pid, 0)
    return 0


def _probe_nesting() -> int:
    """In a child: nest PID namespaces until the kernel refuses; return how many were
    made (each level is unshare + fork; every level's parent just waits and relays)."""
    flags = _new_pidns_flags()
    made = 0
    while made < 64:
        try:
            ksys.unshare(flags)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EUSERS):
                return made
            return 200
        flags = consts.CLONE_NEWPID
        pid = os.fork()
        if pid:
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status) & 0xFF
        made += 1
    return 199


def _err(n: int) -> str:
    return f"{errno.errorcode.get(n, str(n))} ({os.strerror(n)})"


def _check_pidns() -> Check:
    if os.path.exists("/proc/self/ns/pid"):
        return Check("pid namespaces", "ok", "CONFIG_PID_NS: /proc/self/ns/pid exists",
                     essential=True)
    return Check("pid namespaces", "missing", "no /proc/self/ns/pid: kernel built without "
                 "CONFIG_PID_NS", fix="use a kernel built with CONFIG_PID_NS=y",
                 essential=True)


def _check_max_pidns(root: str) -> Check:
    n = _sysctl(root, "user.max_pid_namespaces")
    if n is None:
        return Check("max_pid_namespaces", "unknown", f"{root}/user/max_pid_namespaces "
                     "is unreadable", essential=False)
    if n == 0:
        return Check("max_pid_namespaces", "blocked", "user.max_pid_namespaces = 0: no "
                     "PID namespace can be created", fix="sysctl -w user.max_pid_namespaces=15000",
                     essential=True)
    return Check("max_pid_namespaces", "ok", f"user.max_pid_namespaces = {n}", essential=True)


def _check_userns(root: str, privileged: bool) -> list[Check]:
    """User namespaces and what blocks them for unprivileged users."""
    out: list[Check] = []
    essential = not privileged
    blockers = []
    if not os.path.exists("/proc/self/ns/user"):
        return [Check("user namespaces", "missing", "kernel built without CONFIG_USER_NS",
                      fix="use a kernel built with CONFIG_USER_NS=y", essential=essential)]
    maxu = _sysctl(root, "user.max_user_namespaces")
    if maxu == 0:
        blockers.append(("user.max_user_namespaces = 0",
                         "sysctl -w user.max_user_namespaces=15000"))
    clone = _sysctl(root, "kernel.unprivileged_userns_clone")  # Debian/Ubuntu patch
    if clone == 0:
        blockers.append(("kernel.unprivileged_userns_clone = 0 (Debian/Ubuntu)",
                         "sysctl -w kernel.unprivileged_userns_clone=1"))
    aa = _sysctl(root, "kernel.apparmor_restrict_unprivileged_userns")
    if aa == 1:
        blockers.append(("AppArmor kernel.apparmor_restrict_unprivileged_userns = 1",
                         "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or an "
                         "AppArmor profile with 'userns,' for the program)"))
    parts = [f"user.max_user_namespaces = {maxu}" if maxu is not None else
             "user.max_user_namespaces unreadable"]
    if clone is not None:
        parts.append(f"kernel.unprivileged_userns_clone = {clone}")
    if aa is not None:
        parts.append(f"kernel.apparmor_restrict_unprivileged_userns = {aa}")
    if blockers:
        out.append(Check("unprivileged user namespaces", "blocked",
                         "; ".join(b for b, _ in blockers),
                         fix="; ".join(f for _, f in blockers), essential=essential))
    else:
        out.append(Check("unprivileged user namespaces", "ok", ", ".join(parts),
                         essential=essential))
    return out


def _check_create(privileged: bool) -> Check:
    how = "CAP_SYS_ADMIN" if privileged else "a user namespace (no CAP_SYS_ADMIN)"
    rc = _in_child(_probe_pidns)
    if rc == 0:
        return Check("create a pid namespace", "ok", f"probed: unshare(CLONE_NEWPID) via {how}",
                     essential=True)
    fix = ("run as root, or allow unprivileged user namespaces (see above)"
           if rc in (errno.EPERM, errno.EACCES) else
           "sysctl -w user.max_pid_namespaces=15000" if rc == errno.ENOSPC else None)
    return Check("create a pid namespace", "blocked", f"probe via {how} failed: {_err(rc)}",
                 fix=fix, essential=True)


def _check_translate_ioctls() -> Check:
    name = "translation ioctls"
    try:
        fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        return Check(name, "unknown", f"cannot open /proc/self/ns/pid: {exc.strerror}")
    try:
        me = os.getpid()
        if ksys.ns_pid_in_pidns(fd, me) == me and ksys.ns_pid_from_pidns(fd, me) == me:
            return Check(name, "ok", "NS_GET_PID_FROM_PIDNS / NS_GET_PID_IN_PIDNS answer: "
                         "translate is O(1)")
        return Check(name, "unknown", "the ioctls answered something unexpected")
    except OSError as exc:
        return Check(name, "missing", f"NS_GET_PID_IN_PIDNS: {_err(exc.errno or 0)}; "
                     "translate falls back to scanning /proc",
                     fix="upgrade to Linux >= 6.11")
    finally:
        os.close(fd)


def _check_ns_get_parent() -> Check:
    name = "NS_GET_PARENT"
    try:
        fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        return Check(name, "unknown", f"cannot open /proc/self/ns/pid: {exc.strerror}")
    try:
        pfd = ksys.ns_get_parent(fd)
        os.close(pfd)
        return Check(name, "ok", "nsfs parent links (ls tree, translate fallback)")
    except OSError as exc:
        if exc.errno == errno.EPERM:  # our own namespace's parent is out of view: supported
            return Check(name, "ok", "nsfs parent links (ls tree, translate fallback)")
        return Check(name, "missing", f"{_err(exc.errno or 0)}",
                     fix="upgrade to Linux >= 4.9")
    finally:
        os.close(fd)


def _check_pidfd() -> list[Check]:
    out: list[Check] = []
    try:
        pidfd = ksys.pidfd_open(os.getpid())
    except OSError as exc:
        return [Check("pidfd", "missing", f"pidfd_open: {_err(exc.errno or 0)}",
                      fix="upgrade to Linux >= 5.3")]
    try:
        out.append(Check("pidfd", "ok", "pidfd_open works (race-free signals)"))
        try:
            info = ksys.pidfd_get_info(pidfd)
            ok = info["pid"] == os.getpid()
            out.append(Check("PIDFD_GET_INFO", "ok" if ok else "unknown",
                             "pid/ppid/creds from a pidfd" if ok else
                             f"answered pid {info['pid']}"))
        except OSError as exc:
            out.append(Check("PIDFD_GET_INFO", "missing", _err(exc.errno or 0),
                             fix="upgrade to Linux >= 6.13 (peer_pid uses SO_PEERCRED)"))
    finally:
        os.close(pidfd)
    a, b = socket.socketpair()
    with a, b:
        try:
            os.close(ksys.peer_pidfd(a))
            out.append(Check("SO_PEERPIDFD", "ok", "a pidfd for a unix-socket peer"))
        except OSError as exc:
            out.append(Check("SO_PEERPIDFD", "missing", _err(exc.errno or 0),
                             fix="upgrade to Linux >= 6.5 (peer_pid uses SO_PEERCRED)"))
    return out


def _check_clone3() -> Check:
    rc = _in_child(_probe_clone3)
    name = "clone3 set_tid"
    if rc == 0:
        return Check(name, "ok", "probed: clone3 got PID 1 in a fresh namespace")
    if rc == errno.ENOSYS:
        return Check(name, "missing", "no clone3", fix="upgrade to Linux >= 5.5")
    if rc in (errno.E2BIG, errno.EINVAL):
        return Check(name, "missing", f"clone3 without set_tid: {_err(rc)}",
                     fix="upgrade to Linux >= 5.5")
    if rc in (errno.EPERM, errno.EACCES):
        return Check(name, "blocked", f"probe refused: {_err(rc)}",
                     fix="run as root (CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE), or allow "
                     "unprivileged user namespaces")
    return Check(name, "unknown", f"probe failed: {_err(rc) if rc < 200 else 'crashed'}")


def _check_nesting(probe: bool) -> Check:
    name = "nesting limit"
    limit = (f"{consts.MAX_PID_NS_LEVEL} levels below the initial namespace "
             "(pid_namespaces(7)); deeper fails with ENOSPC")
    if not probe:
        return Check(name, "info", limit)
    rc = _in_child(_probe_nesting)
    if rc <= consts.MAX_PID_NS_LEVEL:
        return Check(name, "info", f"probed: {rc} more levels can be nested below this "
                     f"namespace; {limit}")
    return Check(name, "unknown", f"nesting probe failed ({rc}); {limit}")


def _check_last_pid(privileged: bool) -> Check:
    path = "/proc/sys/kernel/ns_last_pid"
    if not os.path.exists(path):
        return Check("ns_last_pid", "missing", f"no {path}",
                     fix="use a kernel built with CONFIG_CHECKPOINT_RESTORE=y")
    if privileged and os.access(path, os.W_OK):
        return Check("ns_last_pid", "ok", "readable, and writable here (CAP_SYS_ADMIN)")
    return Check("ns_last_pid", "blocked", "readable; writing needs CAP_SYS_ADMIN over the "
                 "namespace's owner", fix="run as root, or set it inside a namespace you "
                 "own: pidns run --user")


def collect(*, sysctl_root: str = SYSCTL_ROOT, probes: bool = True) -> list[Check]:
    """Run every check. ``probes=False`` skips the forked probes (namespace creation,
    clone3), e.g. for tests against a fake sysctl tree."""
    privileged = ksys.has_cap_sys_admin()
    checks = [_check_pidns(), _check_max_pidns(sysctl_root)]
    checks += _check_userns(sysctl_root, privileged)
    if probes:
        checks.append(_check_create(privileged))
    checks.append(_check_nesting(probes))
    checks += [_check_translate_ioctls(), _check_ns_get_parent()]
    checks += _check_pidfd()
    if probes:
        checks.append(_check_clone3())
    checks.append(_check_last_pid(privileged))
    return checks


def essentials_ok(checks: list[Check]) -> bool:
    """Whether every essential check is ``ok`` (``pidns doctor`` exits 0 then, else 1)."""
    return all(c.status == "ok" for c in checks if c.essential)
