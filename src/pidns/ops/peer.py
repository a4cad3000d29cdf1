"""Unix-socket peers across PID namespaces (seed scenario 12).

The kernel translates PIDs in socket credentials for us: ``SO_PEERCRED`` and
``SCM_CREDENTIALS`` report a PID in the PID namespace of the process *reading* them,
and 0 when that namespace cannot see the other process (it lives in an ancestor or a
sibling branch). bubblewrap uses exactly this to learn the outside PID of a process it
started inside a ``--pidns``.

- :func:`peer_pid`: the connected peer's PID, in our namespace. Where the kernel has
  ``SO_PEERPIDFD`` (Linux 6.5) and ``PIDFD_GET_INFO`` (6.13) the PID comes from a pidfd,
  so it is the peer's current PID (not a reused number); otherwise ``SO_PEERCRED``.
- :func:`send_pid` / :func:`recv_pid`: a PID carried in an ``SCM_CREDENTIALS`` message,
  translated by the kernel into the receiver's namespace on the way.
"""

from __future__ import annotations

import errno
import os
import socket

from pidns._kernel import consts
from pidns._kernel import sys as ksys
from pidns.errors import NotFound, PidnsError, from_oserror

_INVISIBLE_HINT = ("the peer lives in an ancestor or a sibling PID namespace; ask from a "
                   "namespace that contains it (e.g. the host)")


def _invisible(action: str, how: str) -> NotFound:
    return NotFound(action, f"{how} is 0: the peer is not visible from this PID namespace",
                    hint=_INVISIBLE_HINT)


def _pid_from_pidfd(sock: socket.socket) -> int | None:
    """The peer's PID via SO_PEERPIDFD + PIDFD_GET_INFO; None where the kernel lacks
    either (or the peer has exited, where SO_PEERCRED still has the last word)."""
    try:
        pidfd = ksys.peer_pidfd(sock)
    except OSError:
        return None  # ENOPROTOOPT before 6.5; not a unix socket: SO_PEERCRED will say
    try:
        return ksys.pidfd_get_info(pidfd, consts.PIDFD_INFO_PID)["pid"]
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            # PIDFD_GET_INFO: exited, or not visible from our namespace.
            return 0
        return None  # ENOTTY/EINVAL before 6.13
    finally:
        os.close(pidfd)


def peer_pid(sock: socket.socket, *, strict: bool = True) -> int:
    """The PID of ``sock``'s peer (as of connect()), in the caller's PID namespace.

    With ``strict=False`` a peer that this namespace cannot see gives 0 (as the kernel
    reports it) instead of an error.

    Raises:
        NotFound: the peer is not visible from here (``strict``), or has exited.
        PidnsError: ``sock`` is not a connected unix socket.
    """
    action = "get the PID of the socket's peer"
    via_pidfd = _pid_from_pidfd(sock)
    if via_pidfd:
        return via_pidfd
    try:
        pid, _, _ = ksys.peercred(sock)
    except OSError as exc:
        raise from_oserror(action, exc,
                           hint="peer_pid needs a connected AF_UNIX socket") from exc
    if pid == 0 and strict:
        raise _invisible(action, "SO_PEERCRED's pid")
    if strict and via_pidfd == 0 and pid:
        # The pidfd says ESRCH, SO_PEERCRED still has a number: the peer has exited
        # (and that number may already belong to someone else).
        raise NotFound(action, f"the peer (pid {pid} at connect time) has exited", pid=pid)
    return pid


def enable_passcred(sock: socket.socket) -> None:
    """Turn on SO_PASSCRED so that received messages carry credentials.

    Set it on a listening socket before accept(): accepted sockets inherit it, so no
    message can arrive before it is on.
    """
    try:
        ksys.set_passcred(sock)
    except OSError as exc:
        raise from_oserror("turn on SO_PASSCRED", exc) from exc


def send_pid(sock: socket.socket, pid: int | None = None, data: bytes = b"P") -> None:
    """Send ``data`` with SCM_CREDENTIALS naming ``pid`` (default: ourselves).

    Any process may send its own PID; naming another needs CAP_SYS_ADMIN over the user
    namespace owning our PID namespace (unix(7)). The receiver gets the PID translated
    into its own namespace, or 0 when it cannot see the process.

    Raises:
        PermissionDenied: ``pid`` is not ours and we lack the capability.
    """
    pid = os.getpid() if pid is None else pid
    cred = ksys.pack_ucred(pid, os.getuid(), os.getgid())
    try:
        sock.sendmsg([data], [(socket.SOL_SOCKET, consts.SCM_CREDENTIALS, cred)])
    except OSError as exc:
        raise from_oserror(f"send pid {pid} over a unix socket", exc, pid=pid) from exc


def recv_pid(sock: socket.socket, *, strict: bool = True, bufsize: int = 1) -> int:
    """Receive one message and return the PID in its SCM_CREDENTIALS, in our view.

    Turns on SO_PASSCRED first (see :func:`enable_passcred` to avoid a race with a
    sender that does not attach credentials explicitly). With ``strict=False`` a PID
    this namespace cannot see comes back as 0.

    Raises:
        NotFound: the sender is not visible from here (``strict``), or the peer closed
            the socket without sending.
        PidnsError: no credentials arrived.
    """
    action = "receive a PID over a unix socket"
    enable_passcred(sock)
    try:
        data, anc, _, _ = sock.recvmsg(bufsize, socket.CMSG_SPACE(ksys.UCRED_SIZE))
    except OSError as exc:
        raise from_oserror(action, exc) from exc
    if not data:
        # EOF: the kernel may still attach (empty, pid 0) credentials; not a PID.
        raise NotFound(action, "the peer closed the socket without sending")
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == consts.SCM_CREDENTIALS:
            pid, _, _ = ksys.unpack_ucred(payload)
            if pid == 0 and strict:
                raise _invisible(action, "the SCM_CREDENTIALS pid")
            return pid
    raise PidnsError(action, "the message carried no SCM_CREDENTIALS",
                     hint="use send_pid() on the other side, on an AF_UNIX socket")
