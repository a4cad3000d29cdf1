"""``pidns top TARGET [-J] [-o COLS] [-n] [-r] [--list-columns]``.

The processes of a container, or of any PID namespace TARGET (an NSREF: ``web``,
``podman:NAME``, ``runc:ID``, ``pid:N``, ...), with both views: HPID (the host's, i.e.
the caller's) and PID/PPID as the container sees them. Everything is read from the
host's /proc; nothing is run inside. The (HPID, PID) pairs are those of
``podman top NAME hpid pid``.
"""

from __future__ import annotations

import argparse
import sys

from pidns.cli import argp, render
from pidns.cli.columns import Column, column_list, select, to_rows
from pidns.errors import UsageError
from pidns.ops import nsref
from pidns.ops.top import TopProcess, container_processes

HELP = "the processes of a container, host and inner PIDs"


def _cputime(t: TopProcess) -> str | None:
    # ps's TIME: cumulative CPU time as [DD-]HH:MM:SS.
    if t.cputime is None:
        return None
    secs = int(t.cputime)
    days, secs = divmod(secs, 86400)
    text = f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"
    return f"{days}-{text}" if days else text


TOP_COLUMNS: tuple[Column[TopProcess], ...] = (
    Column("HPID", "PID in the caller's (host's) view", lambda t: t.hpid, True, "number"),
    Column("PID", "PID inside the container", lambda t: t.pid, True, "number"),
    Column("PPID", "parent PID inside the container (0: the parent is outside)",
           lambda t: t.ppid, True, "number"),
    Column("USER", "real user inside the container", lambda t: t.user),
    Column("STAT", "process state letter", lambda t: t.state),
    Column("TIME", "cumulative CPU time, [DD-]HH:MM:SS", _cputime),
    Column("COMMAND", "command line ([comm] when there is none)", lambda t: t.command),
    Column("NSPID", "PIDs from the container's namespace inwards",
           lambda t: list(t.nspid), False, "array-number", default=False),
    Column("UID", "real UID inside the container", lambda t: t.uid, True, "number",
           default=False),
)


def build(parser: argparse.ArgumentParser) -> None:
    """Declare the options."""
    parser.add_argument("target", metavar="TARGET", nargs="?",
                        help="container or namespace (NSREF: NAME, podman:NAME, runc:ID, "
                        "pid:N, ...)")
    argp.add_table_options(parser)


def main(args: argparse.Namespace) -> int:
    """Run the command."""
    if args.list_columns:
        print(column_list(TOP_COLUMNS), end="")
        return 0
    if args.target is None:
        raise UsageError("parse the arguments of 'pidns top'", "TARGET is missing",
                         hint="pidns top NAME (or podman:NAME, runc:ID, pid:N, ...)")
    cols = select(TOP_COLUMNS, args.output)
    ref = nsref.resolve(args.target)
    with ref:
        procs = container_processes(ref)
    rows = to_rows(procs, cols)
    if args.json:
        objs: list[dict[str, object]] = [dict(r) for r in rows]
        sys.stdout.write(render.json_doc("processes", objs))
    else:
        sys.stdout.write(render.table(rows, cols, render.Env.from_sys(), raw=args.raw,
                                      noheadings=args.noheadings))
    return 0
