"""``pidns ps``: processes with every PID they have (one per namespace level)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pidns.cli import argp

if TYPE_CHECKING:
    from pidns.cli.columns import ProcItem
    from pidns.procfs.model import NsId, Snapshot
    from pidns.procfs.reader import ProcFS

HELP = "list processes: PIDNS, LEVEL, PID, NSPID, PPID, USER, STAT, CONTAINER, COMMAND"


def build(parser: argparse.ArgumentParser) -> None:
    """Options of ``pidns ps``."""
    argp.add_table_options(parser)
    parser.add_argument("--ns", metavar="NSREF",
                        help="only processes in that PID namespace (host, pid:N, ns:INODE, "
                        "a container, ...)")
    parser.add_argument("--in", dest="in_", metavar="NSREF",
                        help="show PIDs as that namespace sees them (hides what it cannot see)")
    # A procfs root other than /proc (fixture trees in tests); not for users.
    parser.add_argument("--proc", default="/proc", help=argparse.SUPPRESS)


def resolve_ns(ref: str, fs: ProcFS, snap: Snapshot) -> NsId:
    """The namespace an NSREF names, matched against ``snap`` (by inode).

    Uses ``pidns.ops.nsref.resolve`` when present; without it, a small fallback
    understands ``host``, ``pid:N``, ``ns:INODE`` and a bare inode.

    Raises:
        NotFound: nothing matches, or it is not among the namespaces seen.
        UsageError: a malformed reference.
    """
    from pidns.errors import NotFound, PidnsError, UsageError

    ino: int | None = None
    have_nsref = fs.root == "/proc"
    if have_nsref:
        try:
            from pidns.ops.nsref import resolve
        except ImportError:
            have_nsref = False
    if have_nsref:
        ino = resolve(ref).ino
    else:
        r = ref.strip()
        try:
            if r == "host":
                ino = fs.ns_id("self").ino
            elif r.startswith("pid:"):
                ino = fs.ns_id(int(r[4:])).ino
            elif r.startswith("ns:"):
                ino = int(r[3:])
            elif r.isdigit():
                ino = int(r)
        except ValueError as exc:
            raise UsageError(f"use namespace reference {ref!r}", "not a number where one "
                             "belongs", hint="forms: host, pid:N, ns:INODE, INODE") from exc
        except PidnsError as exc:
            raise NotFound(f"find namespace {ref!r}", exc.reason, hint=exc.hint) from exc
        if ino is None:
            raise NotFound(f"find namespace {ref!r}", "no such namespace",
                           hint="forms: host, pid:N, ns:INODE, INODE")
    for n in snap.namespaces:
        if n.id.ino == ino:
            return n.id
    raise NotFound(f"find namespace {ref!r}", f"pid:[{ino}] is not visible from here",
                   hint="list namespaces with `pidns ls`")


def items(snap: Snapshot, ns: NsId | None, in_ns: NsId | None, want: set[str]) -> list[ProcItem]:
    """One row object per process, in the view asked for."""
    from pidns.cli.columns import ProcItem
    from pidns.ops import see

    level = {n.id: n.level for n in snap.namespaces}
    # Only when the column is shown; fixture roots never ask engines (not this host's PIDs).
    if "container" in want:
        hook = see.default_container_of() if snap.root == "/proc" else None
        cont: see.Containers | None = see.Containers(snap, hook)
    else:
        cont = None
    user = see.user_name if "user" in want else str
    pid_in = see.visible_from(snap, in_ns) if in_ns is not None else None
    cut = 0
    if in_ns is not None:
        cut = level.get(in_ns) or 0
    out = []
    for p in snap.processes:
        if ns is not None and p.pidns != ns:
            continue
        pid, ppid, nspid = p.pid, p.ppid, p.nspid
        if pid_in is not None:
            vpid = pid_in(p)
            if vpid is None:
                continue
            parent = snap.by_pid.get(p.ppid)
            vppid = pid_in(parent) if parent is not None else None
            pid, ppid, nspid = vpid, vppid or 0, p.nspid[cut:]
        out.append(ProcItem(
            p=p, pid=pid, ppid=ppid, nspid=nspid,
            level=level.get(p.pidns) if p.pidns is not None else None,
            user=user(p.uid),
            container=cont.of_ns(p.pidns) if cont is not None else None,
        ))
    return out


def main(args: argparse.Namespace) -> int:
    """Run ``pidns ps``."""
    from pidns.cli import columns, render
    from pidns.cli.cmd_ls import warn_unseen
    from pidns.procfs.reader import ProcFS

    env = render.Env.from_sys()
    if args.list_columns:
        env.out.write(columns.column_list(columns.PS_COLUMNS))
        return 0
    cols = columns.select(columns.PS_COLUMNS, args.output)
    want = {c.name.lower() for c in cols}
    fs = ProcFS(args.proc)
    snap = fs.snapshot(cmdline="command" in want)
    ns = resolve_ns(args.ns, fs, snap) if args.ns else None
    in_ns = resolve_ns(args.in_, fs, snap) if args.in_ else None
    rows = columns.to_rows(items(snap, ns, in_ns, want), cols)
    if args.json:
        env.out.write(render.json_doc("processes", rows))
    else:
        env.out.write(render.table(rows, cols, env, raw=args.raw, noheadings=args.noheadings))
    n = snap.unseen
    warn_unseen(env, snap, f"{n} row{'s' if n != 1 else ''} shown with PIDNS and LEVEL empty"
                + (" and left out by --ns/--in" if ns or in_ns else ""))
    return 0
