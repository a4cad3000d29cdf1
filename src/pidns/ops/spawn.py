"""Run a process tree in a new PID namespace: :class:`Sandbox` and :func:`run`.

The vocabulary is subprocess's: ``pid``, ``returncode`` (negative for a signal),
``wait(timeout)``, ``poll()``, ``send_signal``/``terminate``/``kill``,
``communicate``, ``stdin``/``stdout``/``stderr``. The handle is real: ``pid`` is our
own child (the namespace's PID 1, as our namespace sees it), waited for directly.

The namespace work happens in the child (a C clone straight to exec; see
``pidns._kernel._native``), never in the calling thread, so this is safe in a
multi-threaded program. Leaving a ``with`` block kills the namespace and reaps it.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import IO, Any, Final

from pidns._kernel import consts
from pidns._kernel import spawn as kspawn
from pidns._kernel import sys as ksys
from pidns.errors import (
    NamespaceLimit,
    NotFound,
    PidnsError,
    TimeoutExpired,
    UsageError,
    from_oserror,
)

PIPE: Final = subprocess.PIPE
DEVNULL: Final = subprocess.DEVNULL
STDOUT: Final = subprocess.STDOUT
CompletedProcess = subprocess.CompletedProcess

# Per-step hints for failures before exec (bwrap's errno-specific advice).
_STEP_HINTS: Final[dict[tuple[int, int], str]] = {
    (4, errno.EPERM): "creating a PID namespace needs CAP_SYS_ADMIN: run as root, or add --user",
    (4, errno.EINVAL): "this kernel refuses the namespace flags; see `pidns doctor`",
    (4, errno.ENOSPC): "the kernel allows 32 nested PID namespaces "
    "(and /proc/sys/user/max_pid_namespaces in all)",
    (4, errno.EUSERS): "the kernel allows 32 nested user namespaces",
    (6, errno.EPERM): "user namespaces may be restricted; see `pidns doctor`",
    (10, errno.ENOENT): "--rootfs must name an existing directory",
    (10, errno.ENOTDIR): "--rootfs must name a directory",
    (11, errno.ENOENT): "the root directory needs an empty /proc directory",
    (12, errno.EINVAL): "--rootfs must be a directory holding a root file system",
    (9, errno.EINVAL): "a hostname is at most 64 bytes",
    (13, errno.ENOENT): "--workdir must exist inside the namespace",
    (20, errno.ENOENT): "pidns-init must be statically linked to run inside --rootfs: "
    "reinstall pidns with libc6-dev present",
    (13, errno.ENOTDIR): "--workdir must be a directory inside the namespace",
}
_STEP_FALLBACK_HINT: Final = "the command did not run; see what this kernel allows: `pidns doctor`"


@dataclass(frozen=True, slots=True)
class NsInfo:
    """A PID namespace: nsfs inode (as lsns shows it), device, absolute level, parent."""

    ino: int
    dev: int
    level: int
    parent: int | None

    def __str__(self) -> str:
        return f"pid:[{self.ino}]"


@cache
def own_level() -> int:
    """The absolute level of the caller's PID namespace (0 = initial), from NSpid.

    (A process never changes PID namespace, so this is read once.)
    """
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"NSpid:"):
                    return len(line.split()) - 2
    except OSError:
        pass
    return 0


def ns_info_fd(fd: int, level: int) -> NsInfo:
    """The PID namespace behind the nsfs ``fd``, known to be at ``level``."""
    st = os.fstat(fd)
    parent: int | None = None
    try:
        pfd = ksys.ns_get_parent(fd)
    except OSError:
        pass  # EPERM: the parent is outside our view
    else:
        parent = os.fstat(pfd).st_ino
        os.close(pfd)
    return NsInfo(st.st_ino, st.st_dev, level, parent)


def _needs_user(user: bool | None) -> bool:
    if user is not None:
        return user
    return not ksys.has_cap_sys_admin()


def check_nest(nest: object) -> None:
    """Raise UsageError unless 1 <= nest <= 32, NamespaceLimit unless that many levels
    still fit below the caller's namespace (the kernel's limit counts from level 0)."""
    if isinstance(nest, bool) or not isinstance(nest, int) or not 1 <= nest <= 32:
        raise UsageError("create nested PID namespaces",
                         f"nest must be 1..32, not {nest!r}",
                         hint="the kernel allows 32 PID-namespace levels below the initial one")
    room = consts.MAX_PID_NS_LEVEL - own_level()
    if nest > room:
        raise NamespaceLimit(
            f"create {nest} nested PID namespaces",
            f"this namespace is at level {own_level()}, and the kernel's limit is level "
            f"{consts.MAX_PID_NS_LEVEL}",
            hint=f"use --nest {room} or less")


def _env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    return None if env is None else dict(env)


def raise_spawn_error(exc: OSError, argv: Sequence[str]) -> PidnsError | OSError:
    """The exception for a failed spawn: exec errors as subprocess raises them
    (FileNotFoundError...), other steps as PidnsError with a hint."""
    if isinstance(exc, kspawn.ChildError):
        if exc.stage == kspawn.STAGE_EXEC:
            return OSError(exc.errno, exc.strerror, argv[0])
        hint = _STEP_HINTS.get((exc.stage, exc.errno or 0))
        err = from_oserror(exc.step, exc, hint=hint)
        err.hint = err.hint or _STEP_FALLBACK_HINT
        if exc.stage == 4 and exc.errno in (errno.ENOSPC, errno.EUSERS):
            err = NamespaceLimit(err.action, err.reason, errnum=err.errnum, hint=err.hint)
        return err
    err = from_oserror("create the namespaces (clone)", exc)
    err.hint = err.hint or _STEP_FALLBACK_HINT
    return err


class Process:
    """A Popen-like handle on a child of ours (the PID is in our namespace's view)."""

    def __init__(self, args: Sequence[str], pid: int, stdin: IO[Any] | None = None,
                 stdout: IO[Any] | None = None, stderr: IO[Any] | None = None,
                 text: bool = False) -> None:
        self.args = list(args)
        self.text = text
        self.pid = pid
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.returncode: int | None = None
        self._lock = threading.Lock()
        try:
            # a pidfd of our unreaped child: no PID-reuse race, pollable exit
            self._pidfd: int | None = ksys.pidfd_open(pid)
        except OSError:
            self._pidfd = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pid={self.pid} returncode={self.returncode}>"

    def _reaped(self, status: int) -> None:
        self.returncode = os.waitstatus_to_exitcode(status)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def poll(self) -> int | None:
        """The return code if the process has exited (reaping it), else None."""
        if self.returncode is not None:
            return self.returncode
        with self._lock:
            if self.returncode is None:
                try:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:
                    # reaped elsewhere (as subprocess, treat as status unknown: 0)
                    self.returncode = 0
                    return self.returncode
                if pid == self.pid:
                    self._reaped(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for exit; return ``returncode`` (negative N: killed by signal N).

        Raises pidns.TimeoutExpired when ``timeout`` seconds pass first.
        """
        if timeout is None:
            with self._lock:
                if self.returncode is None:
                    try:
                        _, status = os.waitpid(self.pid, 0)
                        self._reaped(status)
                    except ChildProcessError:
                        self.returncode = 0
            assert self.returncode is not None
            return self.returncode
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while self.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutExpired(self.args, timeout)
            fd = self._pidfd
            if fd is not None:
                select.select([fd], [], [], left)
            else:
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.05)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` (through the pidfd: never to a reused PID). No-op once reaped."""
        if self.poll() is not None:
            return
        try:
            if self._pidfd is not None:
                ksys.pidfd_send_signal(self._pidfd, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def terminate(self) -> None:
        """send_signal(SIGTERM)."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """send_signal(SIGKILL)."""
        self.send_signal(signal.SIGKILL)

    def communicate(self, input: bytes | str | None = None,
                    timeout: float | None = None) -> tuple[Any, Any]:
        """Send ``input``, read stdout/stderr to EOF, wait; as Popen.communicate."""
        out, err = _communicate(self, input, timeout)
        self.wait(None if timeout is None else max(timeout, 0.001))
        return out, err

    def __enter__(self) -> Process:
        return self

    def _close_streams(self) -> None:
        for f in (self.stdin, self.stdout, self.stderr):
            if f is not None:
                f.close()

    def __exit__(self, *exc: object) -> None:
        self._close_streams()
        self.wait()

    def __del__(self) -> None:
        fd = getattr(self, "_pidfd", None)
        if fd is not None:
            os.close(fd)


class Sandbox(Process):
    """A process tree in a new PID namespace (and mount namespace, with its own /proc).

    ``pid`` is the host (our view) PID of the namespace's PID 1; ``ns`` its namespace
    (with ``nest``, the innermost one, where the command runs); ``command_pid`` the
    command's PID in our view (== pid unless ``init`` or ``nest`` > 1). Leaving the
    ``with`` block kills every process of the namespace and reaps PID 1.

    Raises FileNotFoundError/PermissionError when the command cannot be executed (as
    subprocess does), pidns.PidnsError subclasses when a namespace step fails: then
    the command never runs.

    ``die_with_parent`` (default True) arms PR_SET_PDEATHSIG, which fires when the
    *thread* that created the sandbox exits (prctl(2)).
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        init: bool = False,
        user: bool | None = None,
        rootfs: str | os.PathLike[str] | None = None,
        hostname: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        nest: int = 1,
        mount_proc: bool = True,
        stdin: int | IO[Any] | None = None,
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
        text: bool = False,
        pass_fds: Sequence[int] = (),
        close_fds: bool = True,
        die_with_parent: bool = True,
        new_session: bool = False,
    ) -> None:
        argv = [os.fspath(a) for a in args]
        if not argv:
            raise UsageError("run a command in a new PID namespace", "no command given",
                             hint="pass the command as a list, e.g. ['ps', '-ef']")
        check_nest(nest)
        if rootfs is not None and not os.path.isdir(rootfs):
            raise UsageError("use the root directory", f"{os.fspath(rootfs)!r} is not a directory",
                           hint="--rootfs needs a directory holding a root file system")
        pipes = _Pipes(stdin, stdout, stderr, text)
        self._init = init
        self._user = _needs_user(user)
        opts = kspawn.Options(
            argv, env=_env(env), user=self._user, hostname=hostname,
            rootfs=None if rootfs is None else os.path.abspath(rootfs),
            cwd=None if cwd is None else os.fspath(cwd), mount_proc=mount_proc, init=init,
            nest=nest, setsid=new_session, stdio=pipes.child_fds, pass_fds=tuple(pass_fds),
            close_fds=close_fds, pdeathsig=signal.SIGKILL if die_with_parent else 0,
        )
        got = _spawn(opts, pipes)
        super().__init__(argv, got.pid, *pipes.parent_files(), text=text)
        self.command_pid = got.command_pid
        self._emulated = 0
        self._execs: list[Process] = []
        self._level = own_level() + nest
        self._ns: NsInfo | None = None
        self._nsfd: int | None = None
        try:
            # the fd keeps the namespace (not its processes) alive for ns/translate
            self._nsfd = os.open(f"/proc/{self.command_pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            pass  # the command already exited and took its namespace with it

    @property
    def ns(self) -> NsInfo:
        """The PID namespace the command runs in (with ``nest``, the innermost)."""
        if self._ns is None:
            if self._nsfd is None:
                return NsInfo(0, 0, self._level, None)
            self._ns = ns_info_fd(self._nsfd, self._level)
        return self._ns

    def translate(self, inner_pid: int) -> int:
        """The PID in our view of ``inner_pid`` as the sandbox's namespace sees it.

        Raises pidns.NotFound when no such process is in the namespace.
        """
        if self._nsfd is not None:
            try:
                return ksys.ns_pid_from_pidns(self._nsfd, inner_pid)
            except OSError as exc:
                if exc.errno == errno.ESRCH:
                    raise NotFound(f"translate pid {inner_pid} of {self.ns}",
                                   "no such process in that namespace") from exc
                if not ksys.is_enosys(exc):
                    raise from_oserror(f"translate pid {inner_pid} of {self.ns}", exc) from exc
        for pid, nspid in _members(self.ns.ino):
            if nspid[-1] == inner_pid:
                return pid
        raise NotFound(f"translate pid {inner_pid} of {self.ns}",
                       "no such process in that namespace")

    def inner_pid(self, pid: int) -> int:
        """``pid`` (our view) as the sandbox's namespace sees it.

        Raises pidns.NotFound when that namespace cannot see it.
        """
        if self._nsfd is not None:
            try:
                return ksys.ns_pid_in_pidns(self._nsfd, pid)
            except OSError as exc:
                if exc.errno == errno.ESRCH:
                    raise NotFound(f"translate pid {pid} into {self.ns}",
                                   "that namespace cannot see it (not a member, or gone)",
                                   pid=pid) from exc
                if not ksys.is_enosys(exc):
                    raise from_oserror(f"translate pid {pid} into {self.ns}", exc) from exc
        for member, nspid in _members(self.ns.ino):
            if member == pid:
                return nspid[-1]
        raise NotFound(f"translate pid {pid} into {self.ns}",
                       "that namespace cannot see it (not a member, or gone)", pid=pid)

    def exec(self, args: Sequence[str], *, env: Mapping[str, str] | None = None,
             cwd: str | None = None, stdin: int | IO[Any] | None = None,
             stdout: int | IO[Any] | None = None, stderr: int | IO[Any] | None = None,
             text: bool = False) -> Process:
        """Start another process inside the namespace (its PID, mount and, if the
        sandbox has one, user namespace). Returns a Popen-like handle; does not block.
        """
        if self.poll() is not None:
            raise NotFound(f"run {list(args)!r} in {self.ns}", "the sandbox has exited")
        proc = spawn_into(self.command_pid, list(args), user=self._user, env=env, cwd=cwd,
                          stdin=stdin, stdout=stdout, stderr=stderr, text=text)
        self._execs.append(proc)
        return proc

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to PID 1. The kernel drops a signal that a namespace's PID 1 has
        no handler for; then, as the ``pidns run`` launcher does, the default action is
        applied to the whole namespace, and ``returncode`` reports ``-sig``.
        """
        from pidns.ops.launcher import TERMINATING, handles

        super().send_signal(sig)
        if sig in TERMINATING and self.returncode is None and not handles(self.pid, sig):
            self._emulated = sig
            super().send_signal(signal.SIGKILL)

    def _reaped(self, status: int) -> None:
        super()._reaped(status)
        if self._emulated and self.returncode == -signal.SIGKILL:
            self.returncode = -self._emulated

    def poll(self) -> int | None:
        """As Process.poll; also reaps processes started with :meth:`exec`."""
        for p in self._execs:
            p.poll()
        return super().poll()

    def wait(self, timeout: float | None = None) -> int:
        """As Process.wait, while reaping the processes started with :meth:`exec`.

        (They are our children but members of the namespace: its PID 1 cannot finish
        exiting until we reap them, so waiting for PID 1 alone could wait forever.)
        """
        if not self._execs:
            return super().wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if left <= 0:
                raise TimeoutExpired(self.args, timeout or 0)
            fds = [p._pidfd for p in (self, *self._execs) if p._pidfd is not None]
            select.select(fds, [], [], left)
        assert self.returncode is not None
        return self.returncode

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close_streams()
        # PID 1's death makes the kernel kill every other process of the namespace;
        # waitpid on PID 1 returns only once they are all gone (pid_namespaces(7)).
        self.kill()
        self.wait()
        for p in self._execs:
            p.wait()
        if self._nsfd is not None:
            os.close(self._nsfd)
            self._nsfd = None


def spawn_into(target_pid: int, argv: list[str], *, user: bool, env: Mapping[str, str] | None,
               cwd: str | None, stdin: int | IO[Any] | None = None,
               stdout: int | IO[Any] | None = None, stderr: int | IO[Any] | None = None,
               text: bool = False, host_tools: bool = False, pdeathsig: int = 0) -> Process:
    """Start ``argv`` inside the PID namespace of ``target_pid`` (and its mount and,
    with ``user``, user namespace); with ``host_tools`` keep our mount namespace but
    mount a /proc of the target's namespace in a private copy of it."""
    fds: list[tuple[int, int]] = []
    kinds = [("user", consts.CLONE_NEWUSER)] if user else []
    if not host_tools:
        kinds.append(("mnt", consts.CLONE_NEWNS))
    kinds.append(("pid", consts.CLONE_NEWPID))
    pipes = _Pipes(stdin, stdout, stderr, text)
    try:
        for name, typ in kinds:
            path = f"/proc/{target_pid}/ns/{name}"
            try:
                fds.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), typ))
            except OSError as exc:
                raise from_oserror(f"open {path}", exc, pid=target_pid) from exc
        opts = kspawn.Options(
            argv, env=_env(env), clone_flags=0, join=tuple(fds),
            unshare_flags=consts.CLONE_NEWNS if host_tools else 0, cwd=cwd,
            mount_proc=host_tools, stdio=pipes.child_fds, close_fds=True, pdeathsig=pdeathsig)
        got = _spawn(opts, pipes)
    finally:
        pipes.close_child_ends()
        for fd, _ in fds:
            os.close(fd)
    return Process(argv, got.pid, *pipes.parent_files(), text=text)


def _spawn(opts: kspawn.Options, pipes: _Pipes) -> kspawn.Spawned:
    """kspawn.spawn, closing the child's ends of the pipes (and ours on failure)."""
    try:
        return kspawn.spawn(opts)
    except OSError as exc:
        pipes.close_all()
        raise raise_spawn_error(exc, opts.argv) from exc
    finally:
        pipes.close_child_ends()


def _members(ino: int) -> list[tuple[int, tuple[int, ...]]]:
    """(pid, NSpid chain) of every process in the namespace with inode ``ino``: the
    /proc fallback for kernels without the translation ioctls (before 6.11)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}/ns/pid").st_ino != ino:
                continue
            with open(f"/proc/{name}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"NSpid:"):
                        out.append((int(name), tuple(int(x) for x in line.split()[1:])))
                        break
        except (OSError, ValueError):
            continue
    return out


class _Pipes:
    """stdin/stdout/stderr arguments -> child fds and our file objects (subprocess's)."""

    def __init__(self, stdin: int | IO[Any] | None, stdout: int | IO[Any] | None,
                 stderr: int | IO[Any] | None, text: bool) -> None:
        self.text = text
        self._close_in_parent: list[int] = []
        self._ours: list[int | None] = [None, None, None]
        self._devnull: int | None = None
        fds = [-1, -1, -1]
        for i, spec in enumerate((stdin, stdout, stderr)):
            if spec is None:
                continue
            if spec == PIPE:
                r, w = os.pipe2(os.O_CLOEXEC)
                child, ours = (r, w) if i == 0 else (w, r)
                fds[i] = child
                self._ours[i] = ours
                self._close_in_parent.append(child)
            elif spec == DEVNULL:
                if self._devnull is None:
                    self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                    self._close_in_parent.append(self._devnull)
                fds[i] = self._devnull
            elif spec == STDOUT and i == 2:
                fds[i] = fds[1] if fds[1] >= 0 else 1
            elif isinstance(spec, int):
                fds[i] = spec
            else:
                fds[i] = spec.fileno()
        self.child_fds = (fds[0], fds[1], fds[2])

    def close_child_ends(self) -> None:
        for fd in self._close_in_parent:
            try:
                os.close(fd)
            except OSError:
                pass
        self._close_in_parent = []

    def close_all(self) -> None:
        self.close_child_ends()
        for fd in self._ours:
            if fd is not None:
                os.close(fd)
        self._ours = [None, None, None]

    def parent_files(self) -> tuple[IO[Any] | None, IO[Any] | None, IO[Any] | None]:
        def wrap(fd: int | None, mode: str) -> IO[Any] | None:
            if fd is None:
                return None
            if self.text:
                return open(fd, mode, encoding="utf-8", errors="replace")
            return open(fd, mode + "b", buffering=0 if mode == "w" else -1)

        return wrap(self._ours[0], "w"), wrap(self._ours[1], "r"), wrap(self._ours[2], "r")


def _communicate(p: Process, input: bytes | str | None,
                 timeout: float | None) -> tuple[Any, Any]:
    """Feed stdin and drain stdout/stderr with one selector loop (as Popen does)."""
    import selectors

    deadline = None if timeout is None else time.monotonic() + timeout
    chunks: dict[int, list[bytes]] = {}
    text = p.text
    with selectors.DefaultSelector() as sel:
        if p.stdin is not None:
            data = input.encode() if isinstance(input, str) else (input or b"")
            if data:
                sel.register(p.stdin.fileno(), selectors.EVENT_WRITE, memoryview(data))
            else:
                p.stdin.close()
        for f in (p.stdout, p.stderr):
            if f is not None:
                chunks[f.fileno()] = []
                sel.register(f.fileno(), selectors.EVENT_READ)
        while sel.get_map():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutExpired(p.args, timeout or 0)
            for key, _ in sel.select(left):
                if key.events & selectors.EVENT_WRITE:
                    view: memoryview = key.data
                    try:
                        n = os.write(key.fd, view[:65536])
                    except BrokenPipeError:
                        n = len(view)
                    view = view[n:]
                    if not view:
                        sel.unregister(key.fd)
                        assert p.stdin is not None
                        p.stdin.close()
                    else:
                        sel.modify(key.fd, selectors.EVENT_WRITE, view)
                else:
                    buf = os.read(key.fd, 65536)
                    if buf:
                        chunks[key.fd].append(buf)
                    else:
                        sel.unregister(key.fd)
    res: list[Any] = []
    for f in (p.stdout, p.stderr):
        if f is None:
            res.append(None)
            continue
        raw = b"".join(chunks[f.fileno()])
        res.append(raw.decode("utf-8", "replace") if text else raw)
        f.close()
    return res[0], res[1]


def run(
    args: Sequence[str],
    *,
    capture_output: bool = False,
    input: bytes | str | None = None,
    timeout: float | None = None,
    check: bool = False,
    stdin: int | IO[Any] | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    text: bool = False,
    **kwargs: Any,
) -> subprocess.CompletedProcess[Any]:
    """Run ``args`` as PID 1 of a new PID namespace and wait; as subprocess.run.

    Keyword arguments are :class:`Sandbox`'s (init, user, rootfs, hostname, env, cwd,
    nest, mount_proc, ...). On timeout the namespace is killed and
    pidns.TimeoutExpired is raised. With ``check``, a non-zero status raises
    subprocess.CalledProcessError.
    """
    if capture_output:
        stdout = stdout if stdout is not None else PIPE
        stderr = stderr if stderr is not None else PIPE
    if input is not None and stdin is None:
        stdin = PIPE
    with Sandbox(args, stdin=stdin, stdout=stdout, stderr=stderr, text=text, **kwargs) as box:
        if box.stdin is None and box.stdout is None and box.stderr is None:
            code = box.wait(timeout)
            out = err = None
        else:
            out, err = box.communicate(input, timeout)
            code = box.wait()
    done: subprocess.CompletedProcess[Any] = subprocess.CompletedProcess(
        list(args), code, out, err)
    if check:
        done.check_returncode()
    return done
