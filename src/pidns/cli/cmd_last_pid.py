"""``pidns last-pid [--ns NSREF] [--set N] [-J]``: ns_last_pid of a PID namespace.

Reading another namespace goes through a helper process inside it, which takes a PID
there itself: the output says which. ``--set N`` makes the next process created in the
namespace get N+1.
"""

from __future__ import annotations

import argparse
import json

from pidns.ops.lastpid import last_pid

HELP = "read or set ns_last_pid of a namespace"


def build(parser: argparse.ArgumentParser) -> None:
    """Declare the options."""
    parser.add_argument("--ns", default="host", metavar="NSREF",
                        help="the PID namespace (default: host)")
    parser.add_argument("--set", dest="set_to", type=int, metavar="N",
                        help="set it to N: the next process created there gets N+1")
    parser.add_argument("-J", "--json", action="store_true", help="JSON output")


def main(args: argparse.Namespace) -> int:
    """Run the command."""
    got = last_pid(args.ns, set_to=args.set_to)
    if args.json:
        print(json.dumps({"last_pid": {
            "ns": got.ns.id.ino, "value": got.value, "set": got.written,
            "helper_pid": got.helper_pid}}, indent=2))
        return 0
    where = "host" if got.ns.is_caller() else got.ns.label()
    line = f"{where}: ns_last_pid {got.value}"
    if got.written is not None:
        line += f" (set; the next process there gets {got.written + 1})"
    if got.helper_pid is not None:
        line += (f"; note: the helper that read it took PID {got.helper_pid} in that "
                 "namespace itself")
    print(line)
    return 0
