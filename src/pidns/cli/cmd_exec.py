"""``pidns exec TARGET [-e K=V] [-w DIR] [--host-tools] [--] CMD [ARG...]``.

Run CMD inside TARGET's PID namespace and mount namespace (so its /proc is the one of
the namespace), and its user, UTS, IPC, network and cgroup namespaces where they differ
from ours (as ``docker exec``). TARGET is
any NSREF: a pidns container, ``podman:NAME``, ``pid:N``, ... With ``--host-tools`` CMD
keeps the host's mount namespace (its programs) with a /proc of TARGET's namespace.

For a pidns container CMD gets the container's environment and working directory (as
``docker exec``; ``-e``/``-w`` override them); for other targets, ours (as nsenter).

The exit status is CMD's (128+N when killed by signal N; 126/127 when it cannot be
executed). Signals sent to ``pidns exec`` (INT, TERM, HUP, QUIT, USR1, USR2, WINCH) are
forwarded to CMD; those that come from the terminal already reach CMD, which shares our
process group, and are not sent twice.
"""

from __future__ import annotations

import argparse
import os
import signal

from pidns.errors import ExitStatus, PidnsError, UsageError
from pidns.ops import containers, nsref, runopts

HELP = "run a command inside an existing PID namespace or container"

FORWARD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
           signal.SIGUSR2, signal.SIGWINCH)
SI_KERNEL = 0x80


def build(parser: argparse.ArgumentParser) -> None:
    """Declare the options."""
    parser.add_argument("-e", "--env", action="append", default=[], metavar="K=V",
                        help="set an environment variable (repeatable)")
    parser.add_argument("-w", "--workdir", metavar="DIR", help="working directory inside")
    parser.add_argument("--host-tools", action="store_true",
                        help="keep the host's mount namespace (its programs), with TARGET's "
                        "/proc")
    parser.add_argument("target", metavar="TARGET",
                        help="NSREF: container NAME, ID prefix, podman:NAME, pid:N, ...")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD",
                        help="the command and its arguments")



def main(args: argparse.Namespace) -> int:
    """Run the command."""
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("parse the arguments of 'pidns exec'", "no command given",
                         hint="pidns exec TARGET [--] CMD [ARG...]")
    ref = nsref.resolve(args.target)
    with ref:
        base, cwd = None, args.workdir
        if ref.engine == "pidns":
            # as docker exec: the container's environment and working directory
            conf = containers.get(args.target).config
            base = dict(e.partition("=")[::2] for e in conf.get("env") or [])
            cwd = cwd if cwd is not None else conf.get("workdir")
        env = runopts.env_with(args.env, base, command="exec")
        if ref.pid is None:
            raise UsageError(f"run a command in {ref.label()}",
                             "no process of that namespace is visible to enter it through",
                             hint="give pid:N of a process inside it")
        mask = {*FORWARD, signal.SIGCHLD}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, mask)
        try:
            try:
                proc = containers.exec_into(ref.pid, cmd, env=env, cwd=cwd,
                                            host_tools=args.host_tools)
            except OSError as exc:
                missing = isinstance(exc, (FileNotFoundError, NotADirectoryError))
                err = PidnsError(f"run {cmd[0]!r} in {ref.label()}", exc.strerror or str(exc),
                                 hint="check the name and PATH inside the namespace"
                                 if missing else "check its permissions and interpreter line")
                err.status = ExitStatus.NO_COMMAND if missing else ExitStatus.NOT_RUNNABLE
                raise err from exc
            return _supervise(proc.pid, mask, proc)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _supervise(pid: int, mask: set[signal.Signals], proc: object) -> int:
    while True:
        got, wstatus = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            if os.WIFSIGNALED(wstatus):
                return 128 + os.WTERMSIG(wstatus)
            return os.WEXITSTATUS(wstatus)
        info = signal.sigtimedwait(mask, 1.0)
        if info is None or info.si_signo == signal.SIGCHLD:
            continue
        if info.si_code == SI_KERNEL:
            try:
                if os.getpgid(pid) == os.getpgrp():
                    continue  # from our terminal: CMD got it too
            except OSError:
                pass
        send = getattr(proc, "send_signal", None)
        if callable(send):
            send(info.si_signo)
