"""``pidns run [OPTS] [--] CMD [ARG...]``: CMD as PID 1 of a new PID namespace.

Options are parsed by a small table here rather than argparse: this is the start-up
path users time (``pidns run -- true`` should cost little more than Python itself),
and argparse with its imports costs more than the spawn. ``--help`` still prints the
full usage.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Final

    from pidns._kernel.spawn import Options, Spawned

HELP = "run a command in a new PID namespace (PID 1 inside)"

USAGE: Final = """\
usage: pidns run [OPTIONS] [--] CMD [ARG...]

Run CMD as PID 1 of a new PID namespace, with a new mount namespace and a fresh /proc.
Ctrl-C and signals sent to pidns reach it; when pidns dies, the namespace dies.

options:
  --init                 pidns-init is PID 1 (reaps orphans, forwards signals); CMD is PID 2
  --user                 new user namespace mapping you to root (automatic without
                         CAP_SYS_ADMIN)
  --no-mount-proc        keep the old /proc (it will show the outer namespace)
  --rootfs DIR           pivot_root into DIR and mount /proc there
  --hostname NAME        new UTS namespace with this hostname
  -e, --env K=V          set an environment variable (repeatable)
  -w, --workdir DIR      working directory inside
  --nest N               run CMD N PID-namespace levels below this one (1..32)
  --pid-file FILE        write the host PID of the namespace's PID 1 to FILE
  --json-status-fd FD    write {"child-pid", "command-pid", "pid-namespace"} and, at
                         the end, {"exit-code"} as JSON lines to FD
  -d, --detach           start a named container in the background; print its ID
  --name NAME            the container's name (with -d)
  --stop-signal SIG      the signal `pidns stop` sends first (with -d; default TERM)
  -h, --help             show this help

exit status: CMD's status; 128+N if it was killed by signal N; 125 if pidns failed
(nothing ran); 126 if CMD is not executable; 127 if CMD was not found."""

FLAGS: Final = {"--init": "init", "--user": "user", "--no-mount-proc": "no_mount_proc",
                "-d": "detach", "--detach": "detach"}
VALUES: Final = {"--rootfs": "rootfs", "--hostname": "hostname", "-e": "env", "--env": "env",
                 "-w": "workdir", "--workdir": "workdir", "--nest": "nest",
                 "--pid-file": "pid_file", "--json-status-fd": "json_status_fd",
                 "--name": "name", "--stop-signal": "stop_signal"}


class RunArgs:
    """The parsed command line of ``pidns run`` (defaults as attributes)."""

    init = user = no_mount_proc = detach = False
    rootfs: str | None = None
    hostname: str | None = None
    workdir: str | None = None
    nest = "1"
    pid_file: str | None = None
    json_status_fd: str | None = None
    name: str | None = None
    stop_signal: str | None = None

    def __init__(self) -> None:
        self.env: list[str] = []
        self.cmd: list[str] = []


def _usage_error(reason: str) -> Exception:
    from pidns.errors import UsageError

    return UsageError("parse the arguments of 'pidns run'", reason,
                      hint="see 'pidns run --help'")


def parse(argv: list[str]) -> RunArgs | None:
    """Parse ``pidns run`` options up to CMD; None after printing --help."""
    a = RunArgs()
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            i += 1
            break
        if not tok.startswith("-") or tok == "-":
            break
        if tok in ("-h", "--help"):
            print(USAGE)
            return None
        name, eq, inline = tok.partition("=") if tok.startswith("--") else (tok, "", "")
        if name in FLAGS and not eq:
            setattr(a, FLAGS[name], True)
        elif name in VALUES:
            if eq:
                value = inline
            elif i + 1 < len(argv):
                i += 1
                value = argv[i]
            else:
                raise _usage_error(f"option {name} needs a value")
            if VALUES[name] == "env":
                a.env.append(value)
            else:
                setattr(a, VALUES[name], value)
        else:
            raise _usage_error(f"unknown option {tok!r}")
        i += 1
    a.cmd = argv[i:]
    return a


def build(parser: argparse.ArgumentParser) -> None:
    """Unused: ``pidns run`` parses its own options (see :func:`parse`)."""


def main(args: argparse.Namespace) -> int:  # pragma: no cover - main_argv is used
    """Unused: cli.main calls :func:`main_argv`."""
    raise NotImplementedError


def _nest(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise _usage_error(f"--nest needs a number from 1 to 32, not {text!r}") from None
    if not 1 <= n <= 32:
        from pidns.errors import NamespaceLimit

        if n > 32:
            raise NamespaceLimit(
                f"create {n} nested PID namespaces",
                "the kernel allows at most 32 PID-namespace levels below the initial one "
                "(MAX_PID_NS_LEVEL)", hint="use --nest 32 or less")
        raise _usage_error(f"--nest needs a number from 1 to 32, not {text!r}")
    return n


def main_argv(argv: list[str]) -> int:
    """Run ``pidns run``; return the exit status (raises PidnsError for pidns failures)."""
    a = parse(argv)
    if a is None:
        return 0
    if not a.cmd:
        raise _usage_error("no command given; usage: pidns run [OPTIONS] [--] CMD [ARG...]")
    from pidns.ops import runopts

    env = runopts.env_with(a.env)
    nest = _nest(a.nest)
    status_fd = runopts.status_fd(a.json_status_fd)
    if a.rootfs is not None and not os.path.isdir(a.rootfs):
        from pidns.errors import UsageError

        raise UsageError("use the root directory", f"{a.rootfs!r} is not a directory",
                       hint="--rootfs needs a directory holding a root file system")
    if a.detach or a.name is not None or a.stop_signal is not None:
        from pidns.ops import containers

        if not a.detach:
            raise _usage_error("--name and --stop-signal need -d/--detach")
        print(containers.run_detached(a, env=env, nest=nest))
        return 0

    from pidns._kernel import spawn as kspawn
    from pidns.ops import launcher

    opts = kspawn.Options(
        a.cmd, env=env, user=_wants_user(a.user), hostname=a.hostname,
        rootfs=None if a.rootfs is None else os.path.abspath(a.rootfs), cwd=a.workdir,
        mount_proc=not a.no_mount_proc, init=a.init, nest=nest)
    if nest > 1:
        _check_room(nest)

    def started(got: Spawned) -> None:
        if a.pid_file is not None:
            runopts.write_pid_file(a.pid_file, got.pid)
        if status_fd is not None:
            runopts.status_line(status_fd, child_pid=got.pid, command_pid=got.command_pid,
                                pid_namespace=_ns_inode(got.command_pid))

    try:
        code = launcher.launch(opts, on_start=started)
    except OSError as exc:
        runopts.remove_pid_file(a.pid_file)
        raise _spawn_error(exc, opts) from exc
    if status_fd is not None:
        runopts.status_line(status_fd, exit_code=code)
    runopts.remove_pid_file(a.pid_file)
    return code


def _spawn_error(exc: OSError, opts: Options) -> Exception:
    from pidns._kernel.spawn import STAGE_EXEC, ChildError
    from pidns.errors import ExitStatus, PidnsError
    from pidns.ops.spawn import raise_spawn_error

    err = raise_spawn_error(exc, opts.argv)
    if isinstance(exc, ChildError) and exc.stage == STAGE_EXEC:
        missing = exc.errno in (2, 20)
        hint = ("check the name and PATH inside the namespace" if missing
                else "check its permissions (chmod +x) and its interpreter line")
        out = PidnsError(f"run {opts.argv[0]!r}", exc.strerror or str(exc), hint=hint)
        out.status = ExitStatus.NO_COMMAND if missing else ExitStatus.NOT_RUNNABLE
        return out
    return err


def _wants_user(flag: bool) -> bool:
    if flag:
        return True
    from pidns._kernel.caps import has_cap_sys_admin

    return not has_cap_sys_admin()


def _check_room(nest: int) -> None:
    from pidns.ops.spawn import check_nest

    check_nest(nest)




def _ns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None




if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_argv(sys.argv[1:]))
