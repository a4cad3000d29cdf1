"""``pidns inspect TARGET [-J] [--format TEMPLATE]``: a container as docker-style JSON.

TARGET is a pidns container (name or ID prefix) or another engine's (``podman:NAME``,
``docker:NAME``, ``runc:ID``, ``k8s:NS/POD[/CONTAINER]``). The JSON uses docker's field
names, so ``--format '{{.State.Pid}}'`` works as with docker and podman. As docker, the
output is a JSON array of one object.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pidns.ops import containers, nsref, template

HELP = "show a container as JSON (docker-style fields)"


def build(parser: argparse.ArgumentParser) -> None:
    """Declare the options."""
    parser.add_argument("target", metavar="TARGET",
                        help="container: NAME, ID prefix, podman:NAME, docker:NAME, runc:ID, "
                        "k8s:NS/POD")
    parser.add_argument("-f", "--format", metavar="TEMPLATE",
                        help="Go-template output, e.g. '{{.State.Pid}}'")
    parser.add_argument("-J", "--json", action="store_true",
                        help="JSON output (the default; accepted for symmetry)")


def inspect_target(target: str) -> dict[str, Any]:
    """The inspect object of TARGET (pidns or foreign container)."""
    if nsref.classify(target) == "engine":
        from pidns.ops import engines

        return engines.resolve_foreign(target).inspect()
    return containers.get(target).inspect()


def main(args: argparse.Namespace) -> int:
    """Run the command."""
    obj = inspect_target(args.target)
    if args.format is not None:
        out = template.render(args.format, obj)
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    else:
        sys.stdout.write(json.dumps([obj], indent=4) + "\n")
    return 0
