"""Spawn a process into new or existing namespaces: the report protocol around _native.

The child reports failures as fixed records on a CLOEXEC SOCK_SEQPACKET socketpair;
EOF on our end means the command was exec'd (subprocess's errpipe idea, carried across
namespace boundaries). A record may carry SCM_CREDENTIALS, from which the kernel gives
us the sender's PID translated into our namespace (bwrap's trick).

Raises OSError only: :class:`ChildError` (an OSError) names the step that failed.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from pidns._kernel import _native, consts

REC_ERROR: Final = 1
REC_PID: Final = 2
_REC = struct.Struct("iiii")
_UCRED = struct.Struct("iII")

# Mirrors the ST_* enum of child.h: what the child was doing when it failed.
STAGES: Final[dict[int, str]] = {
    1: "set up signals", 2: "arm the parent-death signal", 3: "enter a namespace",
    4: "create a PID namespace", 5: "deny setgroups in the user namespace",
    6: "write the UID map of the user namespace", 7: "write the GID map of the user namespace",
    8: "make the mount tree private", 9: "set the hostname", 10: "bind-mount the root directory",
    11: "mount /proc", 12: "pivot_root into the root directory", 13: "change directory",
    14: "set up stdin/stdout/stderr", 15: "execute", 16: "unshare namespaces",
    17: "start: the launcher died", 18: "start a new session", 19: "pass file descriptors",
}
STAGE_EXEC: Final = 15


class ChildError(OSError):
    """A step in the child failed before exec; ``stage`` is one of :data:`STAGES`."""

    stage: int

    def __init__(self, stage: int, err: int) -> None:
        super().__init__(err, os.strerror(err))
        self.stage = stage

    @property
    def step(self) -> str:
        """What the child was doing, as a verb phrase ("mount /proc")."""
        return STAGES.get(self.stage, f"set up (step {self.stage})")


@cache
def init_path() -> str:
    """The ``pidns-init`` program built with the package."""
    return str(Path(__file__).with_name("pidns-init"))


def exec_candidates(file: str, env: dict[str, str] | None) -> list[str]:
    """The paths to try for ``file``, in ``env``'s PATH (as subprocess and execvp do)."""
    if "/" in file:
        return [file]
    return [os.path.join(d or ".", file) for d in os.get_exec_path(env)]


@dataclass(frozen=True, slots=True)
class Spawned:
    """What :func:`spawn` made: ``pid`` is our child; ``command_pid`` runs the command."""

    pid: int
    command_pid: int


@dataclass(slots=True)
class Options:
    """The plan for one spawn; every field maps to a step of the child (child.h)."""

    argv: list[str]
    env: dict[str, str] | None = None
    clone_flags: int = consts.CLONE_NEWPID | consts.CLONE_NEWNS
    join: tuple[tuple[int, int], ...] = ()
    unshare_flags: int = 0
    user: bool = False
    hostname: str | None = None
    rootfs: str | None = None
    cwd: str | None = None
    mount_proc: bool = True
    init: bool = False
    nest: int = 1
    setsid: bool = False
    stdio: tuple[int, int, int] = (-1, -1, -1)
    pass_fds: tuple[int, ...] = ()
    close_fds: bool = False
    pdeathsig: int = 9
    vfork: bool = True


def _envp(env: dict[str, str] | None) -> list[bytes]:
    src = os.environb if env is None else {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
    return [k + b"=" + v for k, v in src.items()]


def spawn(o: Options) -> Spawned:
    """Start ``o.argv`` as planned; return once it has exec'd (or raise).

    With ``o.init`` or ``o.nest > 1`` the first process is ``pidns-init`` (PID 1 of
    the first new namespace), and ``command_pid`` is the command's PID in our view.
    Raises ChildError (an OSError) naming the failed step, or OSError from clone.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    lifeline = os.pipe2(os.O_CLOEXEC)
    exec_fd = -1
    try:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        flags = o.clone_flags
        uid_map = gid_map = None
        if o.user and not o.join:
            flags |= consts.CLONE_NEWUSER
            uid_map = f"0 {os.geteuid()} 1\n"
            gid_map = f"0 {os.getegid()} 1\n"
        if o.hostname is not None:
            flags |= consts.CLONE_NEWUTS
        relay = not o.join and (o.init or o.nest > 1)
        argv = o.argv
        keep = list(o.pass_fds)
        if relay:
            exec_fd = os.open(init_path(), os.O_RDONLY | os.O_CLOEXEC)
            argv = [init_path(), "--report", str(theirs.fileno()), "--nest", str(o.nest - 1),
                    "--send-pid"]
            argv += ["--proc"] if o.mount_proc else []
            argv += ["--init"] if o.init else []
            argv += ["--", *o.argv]
            keep.append(theirs.fileno())
        pid = _native.spawn(
            argv, exec_candidates(o.argv[0], o.env), _envp(o.env),
            clone_flags=flags, join=o.join, unshare_flags=o.unshare_flags,
            report_fd=theirs.fileno(), uid_map=uid_map, gid_map=gid_map,
            setgroups_deny=uid_map is not None, hostname=o.hostname, rootfs=o.rootfs,
            cwd=o.cwd, make_private=bool(flags & consts.CLONE_NEWNS) or bool(
                o.unshare_flags & consts.CLONE_NEWNS),
            mount_proc=o.mount_proc, setsid=o.setsid, send_pid=False, stdio=o.stdio,
            keep_fds=keep, close_fds=o.close_fds, exec_fd=exec_fd, pdeathsig=o.pdeathsig,
            lifeline=lifeline, vfork=o.vfork,
        )
        theirs.close()
        command_pid, failure = _read_reports(ours)
        if o.join:
            # our child was the intermediate that entered the namespaces: reap it
            _reap(pid)
            if command_pid is None:
                raise failure or OSError(0, "the namespace helper reported nothing")
            pid = command_pid
        if failure is not None:
            if pid != command_pid:
                _reap(pid)
            raise failure
        return Spawned(pid, command_pid if command_pid is not None else pid)
    finally:
        ours.close()
        theirs.close()
        os.close(lifeline[0])
        os.close(lifeline[1])
        if exec_fd >= 0:
            os.close(exec_fd)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _read_reports(sock: socket.socket) -> tuple[int | None, ChildError | None]:
    """Read records until EOF: (the PID a REC_PID names, the first failure)."""
    cmd_pid: int | None = None
    failure: ChildError | None = None
    while True:
        try:
            data, anc, _flags, _addr = sock.recvmsg(_REC.size, socket.CMSG_SPACE(_UCRED.size))
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            continue
        if not data:
            return cmd_pid, failure
        kind, stage, err, value = _REC.unpack(data[: _REC.size].ljust(_REC.size, b"\0"))
        if kind == REC_ERROR and failure is None:
            failure = ChildError(stage, err)
        elif kind == REC_PID and value:
            cmd_pid = value  # sent by the join intermediate, already in our view
        elif kind == REC_PID:
            # SO_PASSCRED attaches the sender's credentials to every message; a
            # record with value 0 asks us to use them: its PID, translated for us
            for level, typ, payload in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    cmd_pid = _UCRED.unpack(payload[: _UCRED.size])[0] or None
