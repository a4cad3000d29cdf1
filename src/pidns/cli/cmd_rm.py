"""``pidns rm TARGET... [-f]``: remove containers' state.

A running container is refused (exit status 1) unless ``-f`` is given, which kills it
(SIGKILL through a pidfd) and waits for its namespace to end first.
"""

from __future__ import annotations

import argparse

from pidns.ops import containers

HELP = "remove a container"


def build(parser: argparse.ArgumentParser) -> None:
    """Declare the options."""
    parser.add_argument("-f", "--force", action="store_true",
                        help="kill a running container first")
    parser.add_argument("targets", metavar="TARGET", nargs="+",
                        help="container NAME or ID prefix")


def main(args: argparse.Namespace) -> int:
    """Run the command."""
    for target in args.targets:
        c = containers.get(target)
        containers.remove(c, force=args.force)
        print(c.label)
    return 0
