"""``pidns logs TARGET [-f]``: a container's stdout and stderr, as recorded in its log.

With ``-f`` keep printing what the container writes until it exits (as ``docker logs
-f``; Ctrl-C stops following).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from pidns.ops import containers

HELP = "print a container's output"


def build(parser: argparse.ArgumentParser) -> None:
    """Declare the options."""
    parser.add_argument("-f", "--follow", action="store_true",
                        help="keep printing new output until the container exits")
    parser.add_argument("target", metavar="TARGET", help="container NAME or ID prefix")


def _copy(fd: int, out: int) -> int:
    n = 0
    while chunk := os.read(fd, 65536):
        view = memoryview(chunk)
        while view:
            view = view[os.write(out, view):]
        n += len(chunk)
    return n


def main(args: argparse.Namespace) -> int:
    """Run the command."""
    c = containers.get(args.target)
    fd = containers.log_fd(c)
    sys.stdout.flush()
    out = sys.stdout.fileno()
    try:
        _copy(fd, out)
        while args.follow and containers.is_running(c):
            if not _copy(fd, out):
                time.sleep(0.1)
        _copy(fd, out)
    finally:
        os.close(fd)
    return 0
