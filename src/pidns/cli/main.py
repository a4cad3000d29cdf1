"""Entry point: global options, lazy dispatch to one command module, one error handler.

Each command lives in ``pidns.cli.cmd_<name>`` and exposes ``HELP`` (one line),
``build(parser)`` and ``main(args) -> int``. Only the module of the command being run
is imported, so ``pidns run`` pays for nothing that ``pidns ls`` needs.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final, Protocol
else:
    Protocol = object

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

PROG: Final = "pidns"

# name -> one-line summary; the module is pidns.cli.cmd_<name> (dashes -> underscores).
COMMANDS: Final[dict[str, str]] = {
    "run": "run a command in a new PID namespace (PID 1 inside)",
    "exec": "run a command inside an existing PID namespace or container",
    "ls": "list PID namespaces",
    "ps": "list processes with every PID they have",
    "tree": "the process tree with namespace boundaries",
    "translate": "translate a PID between PID namespaces",
    "doctor": "what this kernel and this user can do",
    "last-pid": "read or set ns_last_pid of a namespace",
    "list": "list pidns containers",
    "inspect": "show a container as JSON (docker-style fields)",
    "top": "the processes of a container, host and inner PIDs",
    "logs": "print a container's output",
    "wait": "wait for a container to exit and print its exit code",
    "stop": "stop a container (stop signal, then SIGKILL)",
    "kill": "send a signal to a container's PID 1",
    "rm": "remove a container",
}


class _Command(Protocol):
    HELP: str

    def build(self, parser: argparse.ArgumentParser) -> None: ...

    def main(self, args: argparse.Namespace) -> int: ...


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [
        f"usage: {PROG} [--debug] [--state-dir DIR] COMMAND [ARGS...]",
        "",
        "Make Linux PID namespaces usable and visible.",
        "",
        "commands:",
    ]
    lines += [f"  {n:<{width}}  {h}" for n, h in COMMANDS.items()]
    lines += ["", f"Run '{PROG} COMMAND --help' for a command's options.",
              "Exit status: 0 ok; 1 not found / not visible / refused; 125 pidns failed;",
              "126 not runnable; 127 not found; run/exec: the command's status (128+N: signal N)."]
    return "\n".join(lines)


def _load(name: str) -> _Command:
    # __import__ rather than importlib.import_module: importlib costs start-up time
    mod: _Command = __import__(f"pidns.cli.cmd_{name.replace('-', '_')}", fromlist=["HELP"])
    return mod


def _split_globals(argv: list[str]) -> tuple[bool, str | None, list[str]]:
    debug = False
    state_dir: str | None = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--debug":
            debug = True
        elif a == "--state-dir" and i + 1 < len(argv):
            state_dir = argv[i + 1]
            i += 1
        elif a.startswith("--state-dir="):
            state_dir = a.split("=", 1)[1]
        else:
            break
        i += 1
    return debug, state_dir, argv[i:]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the pidns command line; return the exit status."""
    raw = list(sys.argv[1:] if argv is None else argv)
    debug, state_dir, rest = _split_globals(raw)
    if state_dir is not None:
        os.environ["PIDNS_STATE_DIR"] = state_dir
    try:
        return _dispatch(rest)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head`: stop quietly, as ls/ps do.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return 0
    except Exception as exc:
        # errors.py is imported only here and by the modules that raise: the happy
        # path of `pidns run` does not pay for it
        from pidns.errors import PidnsError

        if not isinstance(exc, PidnsError):
            raise
        if debug:
            import traceback

            traceback.print_exc()
        print(f"{PROG}: {exc}", file=sys.stderr)
        return int(exc.status)


def _dispatch(rest: list[str]) -> int:
    if not rest:
        from pidns.errors import UsageError

        raise UsageError(f"run {PROG}", "no command given",
                         hint=f"see '{PROG} --help' for the list")
    if rest[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if rest[0] == "--version":
        print(f"{PROG} 0.1.0")
        return 0
    name = rest[0]
    if name not in COMMANDS:
        from pidns.errors import UsageError

        raise UsageError(f"run '{PROG} {name}'", "no such command",
                         hint=f"see '{PROG} --help' for the list")
    cmd = _load(name)
    direct = getattr(cmd, "main_argv", None)
    if direct is not None:
        code: int = direct(rest[1:])
        return code
    from pidns.cli import argp

    parser = argp.parser(f"{PROG} {name}", cmd.HELP)
    cmd.build(parser)
    args = parser.parse_args(rest[1:])
    return cmd.main(args)
