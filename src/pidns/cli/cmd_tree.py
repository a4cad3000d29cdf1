"""``pidns tree``: the process tree, each process with its NSpid chain, and the
PID-namespace boundaries marked with the namespace (and container) entered."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pidns.cli.render import Env
    from pidns.ops.see import Containers, Node
    from pidns.procfs.model import Snapshot
    from pidns.procfs.reader import ProcFS

HELP = "the process tree with NSpid chains and PID-namespace boundaries"


def build(parser: argparse.ArgumentParser) -> None:
    """Options of ``pidns tree``."""
    parser.add_argument("target", nargs="?", metavar="TARGET|PID",
                        help="a PID (its subtree) or an NSREF (that namespace's processes)")
    parser.add_argument("-J", "--json", action="store_true", help="JSON output (nested)")
    parser.add_argument("--ascii", action="store_true", help="draw with ASCII only")
    # A procfs root other than /proc (fixture trees in tests); not for users.
    parser.add_argument("--proc", default="/proc", help=argparse.SUPPRESS)


def _tops(target: str | None, fs: ProcFS, snap: Snapshot) -> list[int] | None:
    from pidns.cli.cmd_ps import resolve_ns
    from pidns.procfs.model import PROC_PID_INIT_INO

    if target is None:
        return None
    t = target.strip()
    if t.isdigit() and int(t) < PROC_PID_INIT_INO:
        return [int(t)]
    ns = resolve_ns(t, fs, snap)
    # The namespace's processes whose parent is outside it: its init (or setns'd ones).
    tops = []
    for p in snap.processes:
        if p.pidns != ns:
            continue
        q = snap.by_pid.get(p.ppid)
        if q is None or q.pidns != ns:
            tops.append(p.pid)
    return tops


def _chain(n: Node) -> str:
    return ",".join(map(str, n.process.nspid))


def lines(roots: list[Node], env: Env, conts: Containers, *, ascii: bool = False) -> list[str]:
    """The tree as text lines: ``PREFIX NSPID COMMAND`` plus a boundary mark."""
    from pidns.cli import render

    arrow = "=> " if ascii else "⇒ "
    out = []
    for prefix, node in render.flatten(roots, lambda n: n.children, ascii=ascii):
        text = f"{prefix}{_chain(node)} {render.printable(node.label)}"
        if node.crosses_ns is not None:
            name = conts.of_ns(node.crosses_ns)
            mark = f"{arrow}pid:[{node.crosses_ns.ino}]" + (f" {name}" if name else "")
            mark = f"{render.CYAN}{mark}{render.RESET}" if env.color else mark
            text = f"{text}  {mark}"
        elif env.isatty and len(text) > env.width:
            text = text[:max(env.width - 1, 0)] + "…"
        out.append(text)
    return out


def main(args: argparse.Namespace) -> int:
    """Run ``pidns tree``."""
    from pidns.cli import render
    from pidns.cli.cmd_ls import warn_unseen
    from pidns.ops import see
    from pidns.procfs.reader import ProcFS

    env = render.Env.from_sys()
    fs = ProcFS(args.proc)
    snap = fs.snapshot()
    roots = see.build_tree(snap, _tops(args.target, fs, snap))
    conts = see.Containers(snap, see.default_container_of() if fs.root == "/proc" else None)
    if args.json:
        level = {n.id: n.level for n in snap.namespaces}

        def row(n: Node) -> dict[str, object]:
            p = n.process
            return {
                "pid": p.pid, "nspid": list(p.nspid), "ppid": p.ppid,
                "pidns": p.pidns.ino if p.pidns else None,
                "level": level.get(p.pidns) if p.pidns else None,
                "user": see.user_name(p.uid), "command": p.command,
                "enters": n.crosses_ns.ino if n.crosses_ns else None,
                "container": conts.of_ns(n.crosses_ns) if n.crosses_ns else None,
            }

        env.out.write(render.json_doc("processes",
                                      render.nest(roots, lambda n: n.children, row)))
    else:
        text = lines(roots, env, conts, ascii=args.ascii)
        env.out.write("\n".join(text) + ("\n" if text else ""))
    n = snap.unseen
    warn_unseen(env, snap, f"{n} process{'es' if n != 1 else ''} drawn without a "
                "namespace mark")
    return 0
