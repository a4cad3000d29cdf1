"""``pidns doctor [-J]``: what this kernel and this user can do, and how to fix the rest.

Exit status: 0 when every essential check passes (PID namespaces exist, may be created,
and can be created by this user); 1 when one does not (the feature asked about is not
available); 125 when doctor itself failed.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from pidns.ops.doctor import collect, essentials_ok

HELP = "what this kernel and this user can do"


def build(parser: argparse.ArgumentParser) -> None:
    """Declare the options."""
    parser.add_argument("-J", "--json", action="store_true", help="JSON output")


def main(args: argparse.Namespace) -> int:
    """Run the command."""
    checks = collect()
    ok = essentials_ok(checks)
    if args.json:
        print(json.dumps({"checks": [asdict(c) for c in checks], "ok": ok}, indent=2))
        return 0 if ok else 1
    width = max(len(c.name) for c in checks)
    print(f"{'CHECK':<{width}}  {'STATUS':<8} DETAIL")
    for c in checks:
        mark = "*" if c.essential else " "
        print(f"{c.name:<{width}}  {c.status:<8} {c.detail}{' ' + mark if mark != ' ' else ''}")
        if c.fix:
            print(f"{'':<{width}}  {'':<8} fix: {c.fix}")
    print(f"\n* essential. {'All essentials OK.' if ok else 'Some essentials are missing.'}")
    return 0 if ok else 1
