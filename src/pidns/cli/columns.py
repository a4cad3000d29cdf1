"""Columns as data: one table per listing gives -o, --list-columns, help and typed JSON.

A column is a name (header, ``-o`` key, lowercased JSON key), a help line, a getter from
one item to a plain value (``int``, ``str``, ``list[int]`` or ``None`` for unknown), an
alignment and a JSON type. Getters never format for a terminal; the renderer does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from pidns.errors import UsageError
from pidns.procfs.model import NsId, PidNamespace, Process

R = TypeVar("R")
Value = int | str | list[int] | None
JsonType = Literal["number", "string", "array-number"]


@dataclass(frozen=True, slots=True)
class Column(Generic[R]):
    """One output column of a listing."""

    name: str
    help: str
    get: Callable[[R], Value]
    right: bool = False
    json: JsonType = "string"
    default: bool = True


@dataclass(frozen=True, slots=True)
class NsItem:
    """A row of ``pidns ls``: the namespace plus what the CLI looked up for it."""

    ns: PidNamespace
    leader: Process | None
    user: str | None
    container: str | None
    command: str | None


@dataclass(frozen=True, slots=True)
class ProcItem:
    """A row of ``pidns ps``: the process, its PIDs in the chosen view, and lookups."""

    p: Process
    pid: int
    ppid: int
    nspid: tuple[int, ...]
    level: int | None
    user: str
    container: str | None


def _ino(n: NsId | None) -> int | None:
    return None if n is None else n.ino


LS_COLUMNS: tuple[Column[NsItem], ...] = (
    Column("NS", "namespace identifier (inode number)", lambda i: i.ns.id.ino, True, "number"),
    Column("LEVEL", "nesting level (0: the namespace of the /proc read)",
           lambda i: i.ns.level, True, "number"),
    Column("PARENT", "parent namespace inode", lambda i: _ino(i.ns.parent), True, "number"),
    Column("NPROCS", "number of processes in the namespace", lambda i: len(i.ns.pids), True,
           "number"),
    Column("PID", "PID of the namespace's PID 1 (else the lowest PID), caller's view",
           lambda i: i.ns.leader_pid, True, "number"),
    Column("USER", "owner of that process", lambda i: i.user),
    Column("CONTAINER", "container name (pidns or another engine)", lambda i: i.container),
    Column("COMMAND", "command line of that process (or what keeps the namespace alive)",
           lambda i: i.command),
    Column("INIT", "PID of the namespace's PID 1, caller's view", lambda i: i.ns.init_pid,
           True, "number", default=False),
    Column("KEPTBY", "what keeps the namespace alive: process, bind-mount or fd",
           lambda i: i.ns.kept_alive_by, default=False),
    Column("OWNERNS", "owning user namespace inode", lambda i: _ino(i.ns.owner), True,
           "number", default=False),
    Column("OWNERUID", "UID owning that user namespace", lambda i: i.ns.owner_uid, True,
           "number", default=False),
)

PS_COLUMNS: tuple[Column[ProcItem], ...] = (
    Column("PIDNS", "PID namespace inode", lambda i: _ino(i.p.pidns), True, "number"),
    Column("LEVEL", "nesting level of that namespace", lambda i: i.level, True, "number"),
    Column("PID", "process ID in the chosen view (default: caller's)", lambda i: i.pid, True,
           "number"),
    Column("NSPID", "PIDs from the chosen view inwards, outermost first",
           lambda i: list(i.nspid), False, "array-number"),
    Column("PPID", "parent PID in the chosen view (0: outside it)", lambda i: i.ppid, True,
           "number"),
    Column("USER", "real user of the process", lambda i: i.user),
    Column("STAT", "process state letter", lambda i: i.p.state),
    Column("CONTAINER", "container name (pidns or another engine)", lambda i: i.container),
    Column("COMMAND", "command line ([comm] when there is none)", lambda i: i.p.command),
    Column("HPID", "PID in the caller's view", lambda i: i.p.pid, True, "number",
           default=False),
    Column("INNERPID", "PID inside the process's own namespace", lambda i: i.p.inner_pid,
           True, "number", default=False),
    Column("UID", "real UID", lambda i: i.p.uid, True, "number", default=False),
    Column("COMM", "command name (comm)", lambda i: i.p.name, default=False),
)


def select(table: Sequence[Column[R]], spec: str | None) -> list[Column[R]]:
    """Columns for ``-o SPEC`` (``A,B``; ``+A,B`` appends to the defaults); case-insensitive.

    Raises:
        UsageError: an unknown column name.
    """
    if not spec:
        return [c for c in table if c.default]
    by_name = {c.name.lower(): c for c in table}
    cols = [c for c in table if c.default] if spec.startswith("+") else []
    for name in spec.lstrip("+").split(","):
        if not name.strip():
            continue
        c = by_name.get(name.strip().lower())
        if c is None:
            raise UsageError(f"use column {name.strip()!r}", "unknown column",
                             hint="see --list-columns")
        cols.append(c)
    return cols


def list_columns(table: Sequence[Column[R]]) -> list[tuple[str, str, str]]:
    """(name, JSON type, help) for ``--list-columns``."""
    return [(c.name, c.json.replace("array-number", "array"), c.help) for c in table]


def column_list(table: Sequence[Column[R]]) -> str:
    """The text ``--list-columns`` prints: one ``NAME  <type>  help`` line a column."""
    return "".join(f"{name:>10}  <{kind}>  {text}\n" for name, kind, text in list_columns(table))


def to_rows(items: Sequence[R], cols: Sequence[Column[R]]) -> list[dict[str, Value]]:
    """Plain rows, keyed by lowercase column name, values typed."""
    keys = [(c.name.lower(), c.get) for c in cols]
    return [{k: g(item) for k, g in keys} for item in items]
