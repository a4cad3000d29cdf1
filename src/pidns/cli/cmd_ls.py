"""``pidns ls``: list PID namespaces (the PID part of lsns, made complete)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pidns.cli import argp

if TYPE_CHECKING:
    from pidns.cli.columns import NsItem
    from pidns.cli.render import Env
    from pidns.procfs.model import PidNamespace, Snapshot
    from pidns.procfs.reader import ProcFS

HELP = "list PID namespaces: NS, LEVEL, PARENT, NPROCS, PID, USER, CONTAINER, COMMAND"


def build(parser: argparse.ArgumentParser) -> None:
    """Options of ``pidns ls``."""
    argp.add_table_options(parser)
    parser.add_argument("-T", "--tree", action="store_true", help="draw namespace nesting")
    parser.add_argument("-p", "--task", dest="pid", type=int, metavar="PID",
                        help="only the namespace of process PID")
    parser.add_argument("--fds", action="store_true",
                        help="also find namespaces held only by an open fd (reads every "
                        "/proc/PID/fd: slower)")
    parser.add_argument("--ascii", action="store_true", help="draw trees with ASCII only")
    # A procfs root other than /proc (fixture trees in tests); not for users.
    parser.add_argument("--proc", default="/proc", help=argparse.SUPPRESS)


def _command(n: PidNamespace, leader_cmd: str | None) -> str | None:
    if n.kept_alive_by != "process":
        return f"[{n.kept_alive_by} {' '.join(n.holders)}]"
    return leader_cmd


def items(fs: ProcFS, snap: Snapshot, nss: list[PidNamespace], want: set[str]) -> list[NsItem]:
    """One row object per namespace; lookups only for the columns asked for."""
    from pidns.cli.columns import NsItem
    from pidns.errors import PidnsError
    from pidns.ops import see

    # Only when the column is shown; fixture roots never ask engines (not this host's PIDs).
    if "container" in want:
        hook = see.default_container_of() if fs.root == "/proc" else None
        cont: see.Containers | None = see.Containers(snap, hook)
    else:
        cont = None
    out = []
    for n in nss:
        lead = snap.process(n.leader_pid) if n.leader_pid is not None else None
        cmd: str | None = None
        if "command" in want and lead is not None:
            if lead.cmdline is None:
                try:
                    args = fs.read_cmdline(lead.pid)
                except PidnsError:
                    args = ()
                cmd = " ".join(args) if args else lead.name
            else:
                cmd = lead.command
        out.append(NsItem(
            ns=n, leader=lead,
            user=see.user_name(lead.uid) if lead is not None and "user" in want else None,
            container=cont.of_ns(n.id) if cont is not None else None,
            command=_command(n, cmd),
        ))
    return out


def warn_unseen(env: Env, snap: Snapshot, what: str) -> None:
    """Say on stderr what could not be seen (permissions) and what that hides."""
    unseen = [p for p in snap.problems if p.kind != "gone"]
    if not unseen:
        return
    pids = sorted({p.pid for p in unseen if p.pid is not None})
    why = "permission denied" if all(p.kind == "denied" for p in unseen) else "unreadable"
    shown = ", ".join(map(str, pids[:8])) + (", ..." if len(pids) > 8 else "")
    import os

    # As root, what is still hidden hides itself (e.g. a VM agent as PID 1 whose ns
    # links refuse even root): saying "run as root" would send the user in a circle.
    hint = ("run as root to see everything" if os.geteuid() != 0 else
            "these processes refuse even root (e.g. a sandbox's or VM's own agent); "
            "nothing more can be seen")
    env.err.write(
        f"pidns: cannot see the PID namespace of {len(pids)} process"
        f"{'es' if len(pids) != 1 else ''} (pid {shown}): {why}; {what}; hint: {hint}\n")


def main(args: argparse.Namespace) -> int:
    """Run ``pidns ls``."""
    from pidns.cli import columns, render
    from pidns.errors import NoSuchProcess, NotFound, PidnsError
    from pidns.procfs.reader import ProcFS

    env = render.Env.from_sys()
    if args.list_columns:
        env.out.write(columns.column_list(columns.LS_COLUMNS))
        return 0
    cols = columns.select(columns.LS_COLUMNS, args.output)
    fs = ProcFS(args.proc)
    snap = fs.snapshot(status=False, cmdline=False, fds=args.fds)
    nss = list(snap.namespaces)
    if args.pid is not None:
        try:
            mine = fs.ns_id(args.pid)
        except PidnsError as exc:
            reason = "no such process" if isinstance(exc, NoSuchProcess) else exc.reason
            raise NotFound(f"list the namespace of pid {args.pid}", reason, pid=args.pid,
                           errnum=exc.errnum, hint=exc.hint) from exc
        nss = [n for n in nss if n.id.ino == mine.ino]
    want = {c.name.lower() for c in cols}
    rows_of = items(fs, snap, nss, want)
    n_unseen = snap.unseen
    hidden = (f"{n_unseen} process{'es' if n_unseen != 1 else ''} not counted in any row, "
              "and their namespaces may be missing")
    if args.tree:
        by_id = {i.ns.id: i for i in rows_of}
        kids: dict[object, list[NsItem]] = {}
        roots = []
        for i in rows_of:
            if i.ns.parent is not None and i.ns.parent in by_id:
                kids.setdefault(i.ns.parent, []).append(i)
            else:
                roots.append(i)

        def children(i: NsItem) -> list[NsItem]:
            return kids.get(i.ns.id, [])

        if args.json:
            def row(i: NsItem) -> dict[str, object]:
                return dict(columns.to_rows([i], cols)[0])

            env.out.write(render.json_doc("namespaces", render.nest(roots, children, row)))
        else:
            flat = render.flatten(roots, children, ascii=args.ascii)
            env.out.write(render.table(columns.to_rows([i for _, i in flat], cols), cols, env,
                                       raw=args.raw, noheadings=args.noheadings,
                                       prefixes=[p for p, _ in flat]))
    elif args.json:
        env.out.write(render.json_doc("namespaces", columns.to_rows(rows_of, cols)))
    else:
        env.out.write(render.table(columns.to_rows(rows_of, cols), cols, env, raw=args.raw,
                                   noheadings=args.noheadings))
    warn_unseen(env, snap, hidden)
    if args.pid is not None and not nss:
        raise NotFound(f"list the namespace of pid {args.pid}", "it is not visible here",
                       pid=args.pid)
    return 0
