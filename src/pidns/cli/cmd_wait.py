"""``pidns wait TARGET``: block until the container exits; print its exit code (as docker).

An exit status that was not recorded (the container's waiter was killed) is an error.
"""

from __future__ import annotations

import argparse

from pidns.errors import PidnsError
from pidns.ops import containers

HELP = "wait for a container to exit and print its exit code"


def build(parser: argparse.ArgumentParser) -> None:
    """Declare the options."""
    parser.add_argument("target", metavar="TARGET", help="container NAME or ID prefix")


def main(args: argparse.Namespace) -> int:
    """Run the command."""
    c = containers.wait(containers.get(args.target))
    if c.exit_code is None:
        raise PidnsError(f"get the exit status of container {c.label}",
                         c.error or f"it is {c.status_text()}",
                         hint="the status is recorded by its waiter (pidns-monitor); "
                         "it was not running when the container ended")
    print(c.exit_code)
    return 0
