"""``pidns list [-a] [-J] [-o COLS] [-n] [-r] [--list-columns]``: pidns containers.

As ``docker ps``: running containers only, ``-a`` for all. A corrupt entry is listed
as ``unknown`` with a warning on stderr naming what is wrong; the others are unaffected.
"""

from __future__ import annotations

import argparse
import sys

from pidns.cli import argp, render
from pidns.cli.columns import Column, column_list, select, to_rows
from pidns.errors import NotFound
from pidns.ops import containers
from pidns.ops.containers import Container

HELP = "list pidns containers"

LIST_COLUMNS: tuple[Column[Container], ...] = (
    Column("ID", "container ID (first 12 hex digits; -o FULLID for all)", lambda c: c.id[:12]),
    Column("NAME", "container name", lambda c: c.name),
    Column("STATUS", "running, exited (N), exited (?) when not recorded, created, unknown",
           lambda c: c.status_text()),
    Column("PID", "host PID of the container's PID 1", lambda c: c.pid, True, "number"),
    Column("PIDNS", "PID namespace inode of the command", lambda c: c.pidns, True, "number"),
    Column("CREATED", "creation time (UTC)", lambda c: _created(c)),
    Column("COMMAND", "the command", lambda c: " ".join(c.cmd) or None),
    Column("FULLID", "the whole container ID", lambda c: c.id, default=False),
    Column("CMDPID", "host PID of the command (differs from PID with --init/--nest)",
           lambda c: c.command_pid, True, "number", default=False),
    Column("EXITCODE", "exit status once exited", lambda c: c.exit_code, True, "number",
           default=False),
)


def _created(c: Container) -> str | None:
    at = c.config.get("created_at")
    return at[:19].replace("T", " ") if isinstance(at, str) else None


def build(parser: argparse.ArgumentParser) -> None:
    """Declare the options."""
    parser.add_argument("-a", "--all", action="store_true",
                        help="show every container, not only running ones")
    argp.add_table_options(parser)


def main(args: argparse.Namespace) -> int:
    """Run the command."""
    if args.list_columns:
        print(column_list(LIST_COLUMNS), end="")
        return 0
    cols = select(LIST_COLUMNS, args.output)
    try:
        store = containers.Store.open(create=False)
    except NotFound:
        items: list[Container] = []
    else:
        with store:
            items = store.all()
    for c in items:
        if c.error is not None:
            print(f"pidns: warning: container {c.id[:12]}: {c.error}", file=sys.stderr)
    if not args.all:
        items = [c for c in items if c.status == "running"]
    rows = to_rows(items, cols)
    if args.json:
        sys.stdout.write(render.json_doc("containers", [dict(r) for r in rows]))
    else:
        sys.stdout.write(render.table(rows, cols, render.Env.from_sys(), raw=args.raw,
                                      noheadings=args.noheadings))
    return 0
