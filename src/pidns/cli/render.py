"""Renderers from plain rows: table, raw, JSON, tree. No /proc access here.

The terminal facts (is stdout a tty, its width, colour) come from an injected :class:`Env`
so tests render exactly what a pipe or a terminal would get (httpie's Environment idea).
COMMAND-like last columns are truncated only on a tty; colour is used only on a tty and
never when ``NO_COLOR`` is set.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    from typing import TextIO

    from pidns.cli.columns import Column, Value

T = TypeVar("T")

UNICODE: Final = ("├─ ", "└─ ", "│  ", "   ")
ASCII: Final = ("|- ", "`- ", "|  ", "   ")
BOLD: Final = "\033[1m"
CYAN: Final = "\033[36m"
RESET: Final = "\033[0m"


@dataclass(slots=True)
class Env:
    """Where output goes and what the terminal can do."""

    out: TextIO
    err: TextIO
    isatty: bool = False
    width: int = 80
    color: bool = False

    @classmethod
    def from_sys(cls) -> Env:
        """The real process environment."""
        tty = sys.stdout.isatty()
        width = 80
        if tty:
            try:
                width = os.get_terminal_size(sys.stdout.fileno()).columns
            except OSError:
                pass
        color = tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        return cls(sys.stdout, sys.stderr, tty, width, color)


def cell(v: Value) -> str:
    """A value as table text: unknown is empty (as lsns), lists comma-joined."""
    if v is None:
        return ""
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    return str(v)


def printable(s: str) -> str:
    """Control characters (a newline in a command line) shown as ``?``, as ps does."""
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else "?" for c in s)


def _raw_escape(s: str) -> str:
    # util-linux --raw: one space between cells, so blanks and odd bytes become \xHH.
    if s.isprintable() and " " not in s and "\\" not in s:
        return s
    return "".join(c if c.isprintable() and c not in " \\" else f"\\x{ord(c):02x}" for c in s)


def table(rows: Sequence[Mapping[str, Value]], cols: Sequence[Column[T]], env: Env, *,
          raw: bool = False, noheadings: bool = False,
          prefixes: Sequence[str] | None = None) -> str:
    """Rows as an aligned table (or ``--raw``); ``prefixes`` are tree drawings put in
    front of the first column (``ls -T``).

    Built column by column (10k-row listings): each column's cells are made, measured
    and padded in one pass, then the lines are zipped together.
    """
    esc = _raw_escape if raw else printable
    columns_: list[list[str]] = []
    for i, c in enumerate(cols):
        k = c.name.lower()
        cells = [esc(cell(r[k])) for r in rows]
        if i == 0 and prefixes is not None:
            cells = [p + v for p, v in zip(prefixes, cells, strict=True)]
        columns_.append(cells)
    if raw:
        lines = [] if noheadings else [" ".join(c.name for c in cols)]
        lines += [" ".join(line) for line in zip(*columns_, strict=True)]
        return "\n".join(lines) + ("\n" if lines else "")
    last = len(cols) - 1
    padded: list[list[str]] = []
    heads: list[str] = []
    for i, (c, cells) in enumerate(zip(cols, columns_, strict=True)):
        right = c.right and not (i == 0 and prefixes is not None)
        head = "" if noheadings else c.name
        width = max(len(head), max(map(len, cells), default=0))
        if i == last and not right:
            padded.append(cells)
            heads.append(head)
        elif right:
            padded.append([v.rjust(width) for v in cells])
            heads.append(head.rjust(width))
        else:
            padded.append([v.ljust(width) for v in cells])
            heads.append(head.ljust(width))
    cut = env.isatty and not (cols and cols[-1].right)
    width = env.width

    def fit(text: str) -> str:
        text = text.rstrip()
        if cut and len(text) > width:
            return text[:max(width - 1, 0)] + ("…" if width else "")
        return text

    out = []
    if not noheadings:
        head = fit(" ".join(heads))
        out.append(f"{BOLD}{head}{RESET}" if env.color else head)
    out += [fit(" ".join(line)) for line in zip(*padded, strict=True)]
    return "\n".join(out) + ("\n" if out else "")


def json_doc(key: str, rows: Sequence[Mapping[str, object]]) -> str:
    """lsns-style JSON: one top-level key, lowercase keys, numbers as numbers, null."""
    import json

    return json.dumps({key: [dict(r) for r in rows]}, indent=3, ensure_ascii=False) + "\n"


def flatten(roots: Iterable[T], children: Callable[[T], Sequence[T]], *,
            ascii: bool = False) -> list[tuple[str, T]]:
    """Depth-first (prefix, item) pairs with box-drawing prefixes, as ``pstree``/``lsns -T``."""
    glyph = ASCII if ascii else UNICODE
    out: list[tuple[str, T]] = []
    # Iterative: a deep chain (32 nested namespaces, long process chains) must not
    # hit Python's recursion limit.
    stack: list[tuple[T, str, bool, bool]] = [(r, "", True, True) for r in reversed(list(roots))]
    while stack:
        item, indent, is_last, is_root = stack.pop()
        if is_root:
            out.append(("", item))
            child_indent = ""
        else:
            out.append((indent + (glyph[1] if is_last else glyph[0]), item))
            child_indent = indent + (glyph[3] if is_last else glyph[2])
        kids = children(item)
        stack.extend((kids[i], child_indent, i == len(kids) - 1, False)
                     for i in range(len(kids) - 1, -1, -1))
    return out


def nest(roots: Iterable[T], children: Callable[[T], Sequence[T]],
         row: Callable[[T], dict[str, object]]) -> list[dict[str, object]]:
    """Nested JSON objects: each row gets ``children`` when it has any (as ``lsns -J -T``)."""
    out = []
    for r in roots:
        d = row(r)
        kids = children(r)
        if kids:
            d["children"] = nest(kids, children, row)
        out.append(d)
    return out
