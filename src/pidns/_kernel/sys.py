"""Typed wrappers over libc and the nsfs/pidfd ioctls.

``os.unshare``/``os.setns`` arrive in Python 3.12; below that libc's symbols are used
(never hard-coded syscall numbers where libc has the symbol).
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import sys

from pidns._kernel import consts
from pidns._kernel.caps import has_cap_sys_admin

__all__ = ["has_cap_sys_admin"]  # re-exported: its home is the lighter caps module

# ctypes and socket are imported where they are used: this module is on the start-up
# path of every command, and those two cost ~5 ms of it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import ctypes
    import socket


_LIBC: list[ctypes.CDLL] = []


def _libc() -> ctypes.CDLL:
    if not _LIBC:
        import ctypes

        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


def _check(ret: int) -> int:
    import ctypes

    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


if sys.version_info >= (3, 12):

    def unshare(flags: int) -> None:
        """unshare(2) for the calling thread."""
        os.unshare(flags)

    def setns(fd: int, nstype: int = 0) -> None:
        """setns(2): move the calling *thread* into the namespace behind fd."""
        os.setns(fd, nstype)

else:

    def unshare(flags: int) -> None:
        """unshare(2) via libc (Python < 3.12)."""
        import ctypes

        _check(_libc().unshare(ctypes.c_int(flags)))

    def setns(fd: int, nstype: int = 0) -> None:
        """setns(2) via libc (Python < 3.12)."""
        import ctypes

        _check(_libc().setns(ctypes.c_int(fd), ctypes.c_int(nstype)))


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    """mount(2)."""
    import ctypes

    def enc(s: str | None) -> bytes | None:
        return None if s is None else os.fsencode(s)

    _check(_libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags),
                         enc(data)))


def umount2(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    import ctypes

    _check(_libc().umount2(os.fsencode(target), ctypes.c_int(flags)))


def sethostname(name: str) -> None:
    """sethostname(2) in the caller's UTS namespace."""
    import ctypes

    raw = name.encode()
    _check(_libc().sethostname(raw, ctypes.c_size_t(len(raw))))


def prctl(option: int, arg2: int = 0) -> int:
    """prctl(2) with one argument (PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, ...)."""
    import ctypes

    return _check(_libc().prctl(ctypes.c_int(option), ctypes.c_ulong(arg2),
                                ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)))


def set_child_subreaper(on: bool = True) -> None:
    """prctl(PR_SET_CHILD_SUBREAPER): orphans below us are re-parented to us."""
    prctl(consts.PR_SET_CHILD_SUBREAPER, int(on))


def set_pdeathsig(sig: int) -> None:
    """prctl(PR_SET_PDEATHSIG): get ``sig`` when the parent *thread* exits."""
    prctl(consts.PR_SET_PDEATHSIG, sig)


# nsfs ioctls (linux/nsfs.h). Each returns a new fd or a number; EPERM/ENOTTY/EINVAL
# propagate as OSError for the caller to interpret.

def ns_get_parent(fd: int) -> int:
    """NS_GET_PARENT: an fd for the parent PID (or user) namespace of ``fd``'s."""
    return fcntl.ioctl(fd, consts.NS_GET_PARENT)


def ns_get_userns(fd: int) -> int:
    """NS_GET_USERNS: an fd for the user namespace that owns ``fd``'s namespace."""
    return fcntl.ioctl(fd, consts.NS_GET_USERNS)


def ns_get_nstype(fd: int) -> int:
    """NS_GET_NSTYPE: the CLONE_NEW* flag of ``fd``'s namespace."""
    return fcntl.ioctl(fd, consts.NS_GET_NSTYPE)


def ns_get_owner_uid(fd: int) -> int:
    """NS_GET_OWNER_UID on a user-namespace fd: the owner's UID."""
    buf = bytearray(4)
    fcntl.ioctl(fd, consts.NS_GET_OWNER_UID, buf)
    return int(struct.unpack("I", buf)[0])


def ns_pid_from_pidns(nsfd: int, pid: int) -> int:
    """NS_GET_PID_FROM_PIDNS (Linux 6.11): ``pid`` as ``nsfd``'s namespace sees it ->
    the PID as the caller's namespace sees it. ESRCH when not visible."""
    return fcntl.ioctl(nsfd, consts.NS_GET_PID_FROM_PIDNS, pid)


def ns_pid_in_pidns(nsfd: int, pid: int) -> int:
    """NS_GET_PID_IN_PIDNS (Linux 6.11): ``pid`` as the caller sees it -> the PID as
    ``nsfd``'s namespace sees it. ESRCH when that namespace cannot see it."""
    return fcntl.ioctl(nsfd, consts.NS_GET_PID_IN_PIDNS, pid)


def ns_tgid_from_pidns(nsfd: int, pid: int) -> int:
    """NS_GET_TGID_FROM_PIDNS: as :func:`ns_pid_from_pidns`, for thread-group IDs."""
    return fcntl.ioctl(nsfd, consts.NS_GET_TGID_FROM_PIDNS, pid)


def ns_tgid_in_pidns(nsfd: int, pid: int) -> int:
    """NS_GET_TGID_IN_PIDNS: as :func:`ns_pid_in_pidns`, for thread-group IDs."""
    return fcntl.ioctl(nsfd, consts.NS_GET_TGID_IN_PIDNS, pid)


def pidfd_open(pid: int) -> int:
    """pidfd_open(2) (Linux 5.3): a stable handle on a process."""
    return os.pidfd_open(pid)


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    """pidfd_send_signal(2) (Linux 5.1): signal without a PID-reuse race."""
    import signal

    signal.pidfd_send_signal(pidfd, sig)


def pidfd_get_info(pidfd: int, mask: int = consts.PIDFD_INFO_PID) -> dict[str, int]:
    """PIDFD_GET_INFO (Linux 6.13): pid/tgid/ppid (in the caller's namespace) and creds.

    Raises OSError(ENOTTY/EINVAL) on older kernels.
    """
    buf = bytearray(consts.PIDFD_INFO_SIZE_VER0)
    struct.pack_into("Q", buf, 0, mask)
    fcntl.ioctl(pidfd, consts.PIDFD_GET_INFO, buf)
    names = ("mask", "cgroupid", "pid", "tgid", "ppid", "ruid", "rgid", "euid", "egid",
             "suid", "sgid", "fsuid", "fsgid", "exit_code")
    return dict(zip(names, struct.unpack_from("QQ11Ii", buf), strict=True))


def is_enosys(exc: OSError) -> bool:
    """Whether ``exc`` means "this kernel does not have that call/ioctl"."""
    return exc.errno in (errno.ENOSYS, errno.ENOTTY, errno.EOPNOTSUPP)


# --- unix-socket credentials (socket(7), unix(7)); appended for ops.peer ----------------
# struct ucred { pid_t pid; uid_t uid; gid_t gid; }: the kernel fills pid in the view of
# the PID namespace of the process *reading* it (0 when that namespace cannot see it).

_UCRED = struct.Struct("iII")


def peercred(sock: socket.socket) -> tuple[int, int, int]:
    """SO_PEERCRED: (pid, uid, gid) of the peer as of connect()/socketpair()."""
    import socket

    raw = sock.getsockopt(socket.SOL_SOCKET, consts.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return int(pid), int(uid), int(gid)


def peer_pidfd(sock: socket.socket) -> int:
    """SO_PEERPIDFD (Linux 6.5): a pidfd for the peer. ENOPROTOOPT on older kernels."""
    import socket

    return int(sock.getsockopt(socket.SOL_SOCKET, consts.SO_PEERPIDFD))


def set_passcred(sock: socket.socket, on: bool = True) -> None:
    """SO_PASSCRED: receive SCM_CREDENTIALS with every message."""
    import socket

    sock.setsockopt(socket.SOL_SOCKET, consts.SO_PASSCRED, int(on))


def pack_ucred(pid: int, uid: int, gid: int) -> bytes:
    """The payload of an SCM_CREDENTIALS control message."""
    return _UCRED.pack(pid, uid, gid)


def unpack_ucred(data: bytes) -> tuple[int, int, int]:
    """(pid, uid, gid) from an SCM_CREDENTIALS control message."""
    pid, uid, gid = _UCRED.unpack_from(data)
    return int(pid), int(uid), int(gid)


UCRED_SIZE = _UCRED.size


# --- clone3(2) with set_tid (Linux 5.5); appended for `pidns doctor` ---------------------
# libc has no clone3 wrapper. Its number, 435, is the same on every architecture: it was
# added (Linux 5.3) after the syscall tables were unified for new calls. The C extension
# (_native.clone3_set_tid) is preferred where it is built; the ctypes path is the same
# call. Either way the child _exit(0)s at once: this only creates a process with chosen
# PIDs, and the caller must reap it. Call it only from a single-threaded (forked) process.

SYS_CLONE3 = 435
# struct clone_args up to set_tid_size (CLONE_ARGS_SIZE_VER1), all u64:
# flags pidfd child_tid parent_tid exit_signal stack stack_size tls set_tid set_tid_size
_CLONE_ARGS_VER1 = struct.Struct("10Q")


def clone3_set_tid(flags: int, set_tid: list[int]) -> int:
    """clone3 whose child gets the PIDs ``set_tid`` (innermost namespace first) and exits
    at once; returns the child's PID. OSError: ENOSYS (< 5.3), E2BIG/EINVAL (no set_tid,
    < 5.5), EEXIST (PID taken), EPERM (needs CAP_SYS_ADMIN/CAP_CHECKPOINT_RESTORE)."""
    try:
        from pidns._kernel import _native  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        pass
    else:
        return int(_native.clone3_set_tid(flags, list(set_tid)))
    import ctypes
    import signal

    tids = (ctypes.c_int * max(1, len(set_tid)))(*set_tid)
    args = ctypes.create_string_buffer(_CLONE_ARGS_VER1.pack(
        flags, 0, 0, 0, int(signal.SIGCHLD), 0, 0, 0, ctypes.addressof(tids), len(set_tid)))
    syscall = _libc().syscall
    syscall.restype = ctypes.c_long
    pid = int(syscall(ctypes.c_long(SYS_CLONE3), args, ctypes.c_size_t(_CLONE_ARGS_VER1.size)))
    if pid == 0:
        os._exit(0)
    return _check(pid)
