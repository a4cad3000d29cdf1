"""The ``pidns run`` launcher: start PID 1, forward signals, emulate default actions.

A namespace's PID 1 gets no default action for a signal it has no handler for: the
kernel drops it (pid_namespaces(7)). ``sleep`` as PID 1 would ignore Ctrl-C and
``kill``. So the launcher, when it gets a terminating signal that PID 1 neither
catches, blocks nor ignores, ends the namespace itself and exits 128+N, as the shell
would report a command killed by signal N.

Signals sent to the launcher (kill(2): si_code SI_USER) are forwarded to PID 1.
Signals from the terminal (si_code SI_KERNEL) already reached PID 1 when it shares our
foreground process group, so they are not sent twice. An interactive shell as PID 1
takes the terminal (its own process group), so Ctrl-C goes to its foreground job.

Imports stay minimal (``_signal``, not ``signal``): this is the start-up path of
``pidns run``.
"""

from __future__ import annotations

import os

from pidns._kernel import spawn as kspawn

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _sig
    from typing import Final
else:
    import _signal as _sig

SIGINT, SIGQUIT, SIGTERM, SIGHUP = 2, 3, 15, 1
SIGUSR1, SIGUSR2, SIGCHLD, SIGWINCH, SIGKILL = 10, 12, 17, 28, 9
FORWARD: Final = (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH)
# default action "terminate" (or core): PID 1 without a handler would not die
TERMINATING: Final = frozenset((SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2))
SI_KERNEL: Final = 0x80


def handles(pid: int, sig: int) -> bool:
    """Whether ``pid`` catches, blocks or ignores ``sig`` (SigCgt/SigBlk/SigIgn)."""
    bit = 1 << (sig - 1)
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line[:6] in (b"SigCgt", b"SigBlk", b"SigIgn") and int(line[7:], 16) & bit:
                    return True
    except (OSError, ValueError):
        return False
    return False


def status_of(wstatus: int) -> int:
    """A wait status as the shell reports it: the exit code, or 128+N for signal N."""
    if os.WIFSIGNALED(wstatus):
        return 128 + os.WTERMSIG(wstatus)
    return os.WEXITSTATUS(wstatus) if os.WIFEXITED(wstatus) else 125


def launch(opts: kspawn.Options, *, on_start: object = None) -> int:
    """Run ``opts`` to completion in the foreground; return the shell-style status.

    ``on_start(spawned)`` is called once the command runs. Raises OSError/ChildError
    from the spawn (nothing is left running then).
    """
    mask = {*FORWARD, SIGCHLD}
    # Blocked before the spawn so no SIGCHLD or forwarded signal is lost; the child
    # clears its own mask before exec.
    old = _sig.pthread_sigmask(_sig.SIG_BLOCK, mask)
    try:
        got = kspawn.spawn(opts)
        pid = got.pid
        try:
            pidfd: int | None = os.pidfd_open(pid)
        except OSError:
            pidfd = None
        try:
            if callable(on_start):
                try:
                    on_start(got)
                except BaseException:
                    # fail closed: nothing keeps running that we could not report
                    _send(pid, pidfd, SIGKILL)
                    os.waitpid(pid, 0)
                    raise
            return _supervise(pid, pidfd, mask)
        finally:
            if pidfd is not None:
                os.close(pidfd)
    finally:
        _sig.pthread_sigmask(_sig.SIG_SETMASK, old)


def _send(pid: int, pidfd: int | None, sig: int) -> None:
    try:
        if pidfd is not None:
            _sig.pidfd_send_signal(pidfd, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _supervise(pid: int, pidfd: int | None, mask: set[int]) -> int:
    while True:
        got, wstatus = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            return status_of(wstatus)
        info = _sig.sigtimedwait(mask, 1.0)
        if info is None or info.si_signo == SIGCHLD:
            continue
        sig = info.si_signo
        from_tty = info.si_code == SI_KERNEL
        try:
            same_group = os.getpgid(pid) == os.getpgrp()
        except OSError:
            same_group = False
        if not (from_tty and same_group):
            _send(pid, pidfd, sig)
        if sig in TERMINATING and not handles(pid, sig):
            # the kernel dropped it: apply the default action to the namespace
            _send(pid, pidfd, SIGKILL)
            os.waitpid(pid, 0)
            return 128 + sig
