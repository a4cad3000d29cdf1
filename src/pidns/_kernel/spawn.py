"""Spawn a process into new or existing namespaces: the plan and the call to _native.

The child reports failures as fixed records on a CLOEXEC SOCK_SEQPACKET socketpair
that _native reads until EOF (EOF means the command was exec'd: subprocess's errpipe
idea, carried across namespace boundaries). A record may carry SCM_CREDENTIALS, from
which the kernel gives us the command's PID translated into our namespace (bwrap's
trick). Everything runs in C, so the ``pidns run`` path imports almost nothing.

Raises OSError only: :class:`ChildError` (an OSError) names the step that failed.
"""

from __future__ import annotations

import os

from pidns._kernel import _native, consts

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

# Mirrors the ST_* enum of child.h: what the child was doing when it failed.
STAGES: Final[dict[int, str]] = {
    1: "set up signals", 2: "arm the parent-death signal", 3: "enter a namespace",
    4: "create a PID namespace", 5: "deny setgroups in the user namespace",
    6: "write the UID map of the user namespace", 7: "write the GID map of the user namespace",
    8: "make the mount tree private", 9: "set the hostname", 10: "bind-mount the root directory",
    11: "mount /proc", 12: "pivot_root into the root directory", 13: "change directory",
    14: "set up stdin/stdout/stderr", 15: "execute", 16: "unshare namespaces",
    17: "start: the launcher died", 18: "start a new session", 19: "pass file descriptors",
    20: "execute pidns-init inside the namespace",
}
STAGE_CLONE: Final = 4
STAGE_EXEC: Final = 15


class ChildError(OSError):
    """A step in the child failed before exec; ``stage`` is one of :data:`STAGES`."""

    def __init__(self, stage: int, err: int) -> None:
        super().__init__(err, os.strerror(err))
        self.stage = stage

    @property
    def step(self) -> str:
        """What the child was doing, as a verb phrase ("mount /proc")."""
        return STAGES.get(self.stage, f"set up (step {self.stage})")


INIT_PATH: Final = os.path.join(os.path.dirname(__file__), "pidns-init")


def exec_candidates(file: str, env: dict[str, str] | None) -> list[str]:
    """The paths to try for ``file``, in ``env``'s PATH (as subprocess and execvp do)."""
    if "/" in file:
        return [file]
    return [os.path.join(d or ".", file) for d in os.get_exec_path(env)]


class Spawned:
    """What :func:`spawn` made: ``pid`` is our child; ``command_pid`` runs the command."""

    __slots__ = ("command_pid", "pid")

    def __init__(self, pid: int, command_pid: int) -> None:
        self.pid = pid
        self.command_pid = command_pid

    def __repr__(self) -> str:
        return f"Spawned(pid={self.pid}, command_pid={self.command_pid})"


class Options:
    """The plan for one spawn; every field maps to a step of the child (child.h)."""

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        clone_flags: int = consts.CLONE_NEWPID | consts.CLONE_NEWNS,
        join: tuple[tuple[int, int], ...] = (),
        unshare_flags: int = 0,
        user: bool = False,
        hostname: str | None = None,
        rootfs: str | None = None,
        cwd: str | None = None,
        mount_proc: bool = True,
        init: bool = False,
        nest: int = 1,
        setsid: bool = False,
        stdio: tuple[int, int, int] = (-1, -1, -1),
        pass_fds: tuple[int, ...] = (),
        close_fds: bool = False,
        pdeathsig: int = 9,
        vfork: bool = True,
    ) -> None:
        self.argv = argv
        self.env = env
        self.clone_flags = clone_flags
        self.join = join
        self.unshare_flags = unshare_flags
        self.user = user
        self.hostname = hostname
        self.rootfs = rootfs
        self.cwd = cwd
        self.mount_proc = mount_proc
        self.init = init
        self.nest = nest
        self.setsid = setsid
        self.stdio = stdio
        self.pass_fds = pass_fds
        self.close_fds = close_fds
        self.pdeathsig = pdeathsig
        self.vfork = vfork


def _envp(env: dict[str, str] | None) -> list[bytes]:
    if env is None:
        return [k + b"=" + v for k, v in os.environb.items()]
    return [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]


def spawn(o: Options) -> Spawned:
    """Start ``o.argv`` as planned; return once it has exec'd (or raise).

    With ``o.init`` or ``o.nest > 1`` the first process is ``pidns-init`` (PID 1 of
    the first new namespace), and ``command_pid`` is the command's PID in our view.
    Raises ChildError (an OSError) naming the failed step (the child is reaped), or
    OSError from clone itself.
    """
    flags = o.clone_flags
    uid_map = gid_map = None
    if o.user and not o.join:
        flags |= consts.CLONE_NEWUSER
        uid_map = f"0 {os.geteuid()} 1\n"
        gid_map = f"0 {os.getegid()} 1\n"
    if o.hostname is not None:
        flags |= consts.CLONE_NEWUTS
    argv = o.argv
    exec_fd = report_argi = -1
    if not o.join and (o.init or o.nest > 1):
        # pidns-init is PID 1 (and a relay per extra level); it reaches us through
        # the report fd named in its argv, and is exec'd through an fd so that it
        # works after pivot_root too
        exec_fd = os.open(INIT_PATH, os.O_RDONLY | os.O_CLOEXEC)
        argv = [INIT_PATH, "--report", "", "--nest", str(o.nest - 1), "--send-pid"]
        argv += ["--proc"] if o.mount_proc else []
        argv += ["--init"] if o.init else []
        argv += ["--", *o.argv]
        report_argi = 2
    try:
        pid, command_pid, stage, err = _native.spawn(
            argv, exec_candidates(o.argv[0], o.env), _envp(o.env),
            clone_flags=flags, join=o.join, unshare_flags=o.unshare_flags,
            report_argi=report_argi, uid_map=uid_map, gid_map=gid_map,
            setgroups_deny=uid_map is not None, hostname=o.hostname, rootfs=o.rootfs,
            cwd=o.cwd,
            make_private=bool((flags | o.unshare_flags) & consts.CLONE_NEWNS),
            mount_proc=o.mount_proc, setsid=o.setsid, send_pid=False, stdio=o.stdio,
            keep_fds=o.pass_fds, close_fds=o.close_fds, exec_fd=exec_fd,
            pdeathsig=o.pdeathsig, vfork=o.vfork,
        )
    finally:
        if exec_fd >= 0:
            os.close(exec_fd)
    if stage:
        raise ChildError(stage, err)
    return Spawned(pid, command_pid)
