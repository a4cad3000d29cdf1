"""``pidns stop TARGET [-t SECONDS]``: the stop signal, then SIGKILL after the grace time.

The stop signal is the container's ``--stop-signal`` (default SIGTERM). A PID 1 without
a handler for it ignores it (pid_namespaces(7)), so such a container is SIGKILLed when
the grace time (default 10 s) runs out. Prints what was done and whether the PID
namespace was torn down (no process left in it).
"""

from __future__ import annotations

import argparse

from pidns.errors import UsageError
from pidns.ops import containers

HELP = "stop a container (stop signal, then SIGKILL)"


def build(parser: argparse.ArgumentParser) -> None:
    """Declare the options."""
    parser.add_argument("-t", "--time", type=float, default=10.0, metavar="SECONDS",
                        help="grace time before SIGKILL (default 10)")
    parser.add_argument("target", metavar="TARGET", help="container NAME or ID prefix")


def main(args: argparse.Namespace) -> int:
    """Run the command."""
    if args.time < 0:
        raise UsageError("parse the arguments of 'pidns stop'",
                         f"-t must be 0 or more seconds, not {args.time:g}",
                         hint="e.g. pidns stop -t 2 NAME")
    c = containers.get(args.target)
    r = containers.stop(c, args.time)
    how = (f"{r.signal}, then SIGKILL after {args.time:g} s" if r.killed
           else f"{r.signal}")
    code = "?" if r.exit_code is None else str(r.exit_code)
    ns = "torn down" if r.torn_down else "NOT torn down (processes are left in it)"
    print(f"{c.label}: stopped by {how}; exit code {code}; PID namespace "
          f"pid:[{c.pidns}] {ns}")
    return 0
