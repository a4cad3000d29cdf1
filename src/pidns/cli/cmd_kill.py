"""``pidns kill TARGET [-s SIG]``: send a signal to a container's PID 1 (default SIGKILL).

SIG is a name with or without ``SIG`` (``TERM``, ``SIGTERM``) or a number. The signal
goes through a pidfd of the recorded PID 1 (checked against its start time and PID
namespace), never to a PID that may have been reused. Note that a PID 1 ignores
signals it has no handler for, SIGKILL excepted (pid_namespaces(7)).
"""

from __future__ import annotations

import argparse

from pidns.ops import containers

HELP = "send a signal to a container's PID 1"


def build(parser: argparse.ArgumentParser) -> None:
    """Declare the options."""
    parser.add_argument("-s", "--signal", default="KILL", metavar="SIG",
                        help="signal name or number (default KILL)")
    parser.add_argument("target", metavar="TARGET", help="container NAME or ID prefix")


def main(args: argparse.Namespace) -> int:
    """Run the command."""
    sig = containers.parse_signal(args.signal, action="parse the arguments of 'pidns kill'")
    c = containers.get(args.target)
    containers.kill(c, sig)
    print(c.label)
    return 0
