"""``pidns translate PID [--from NSREF] [--to NSREF] [-a] [-J]``.

Prints PID (as ``--from`` sees it) as ``--to`` sees it; both default to ``host``, the
namespace pidns runs in. ``-a`` prints every PID of the process, one per namespace
level, with the namespace and container of each level. Exit 1 when the process does
not exist in ``--from`` or ``--to`` cannot see it.
"""

from __future__ import annotations

import argparse
import json

from pidns.errors import UsageError
from pidns.ops import nsref, translate

HELP = "translate a PID between PID namespaces"


def build(parser: argparse.ArgumentParser) -> None:
    """Declare the options."""
    parser.add_argument("pid", type=int, metavar="PID", help="the PID, as --from sees it")
    parser.add_argument("--from", dest="src", default="host", metavar="NSREF",
                        help="the namespace PID is given in (default: host)")
    parser.add_argument("--to", dest="dst", default="host", metavar="NSREF",
                        help="the namespace to express it in (default: host)")
    parser.add_argument("-a", "--all", action="store_true",
                        help="every PID of the process, one per namespace level")
    parser.add_argument("-J", "--json", action="store_true", help="JSON output")


def main(args: argparse.Namespace) -> int:
    """Run the command."""
    if args.all and args.dst != "host":
        raise UsageError("combine -a with --to", "-a prints the PID at every level, "
                         "outermost first, so --to does not apply",
                         hint=f"pidns translate {args.pid} --from {args.src} -a")
    src = nsref.resolve(args.src)
    if args.all:
        levels = translate.chain(args.pid, src)
        rows = [{"level": lv.level, "pid": lv.pid,
                 "ns": lv.ns.ino if lv.ns is not None else None,
                 "container": lv.container,
                 "engine": lv.engine} for lv in levels]
        if args.json:
            print(json.dumps({"pids": rows}, indent=2))
            return 0
        print(f"{'LEVEL':>5} {'PID':>8} {'NS':>10}  CONTAINER")
        for r in rows:
            who = r["container"] or "-"
            if r["engine"] not in (None, "pidns"):
                who = f"{r['engine']}:{who}"
            ns = r["ns"] if r["ns"] is not None else "?"
            print(f"{r['level']:>5} {r['pid']:>8} {ns:>10}  {who}")
        return 0
    dst = nsref.resolve(args.dst)
    out = translate.translate(args.pid, src, dst)
    if args.json:
        print(json.dumps({"translation": {
            "pid": args.pid, "from": src.id.ino, "to": dst.id.ino, "result": out}}, indent=2))
    else:
        print(out)
    return 0
