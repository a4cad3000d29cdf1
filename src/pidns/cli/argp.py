"""argparse that reports bad usage as one ``pidns: cannot ...`` line, exit 125."""

from __future__ import annotations

import argparse
from typing import NoReturn

from pidns.errors import UsageError


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are :class:`UsageError` (one line, exit 125)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"parse the arguments of '{self.prog}'", message,
                         hint=f"see '{self.prog} --help'")


def parser(prog: str, description: str) -> Parser:
    """A parser for one subcommand."""
    return Parser(prog=prog, description=description, allow_abbrev=False)


def add_table_options(p: argparse.ArgumentParser) -> None:
    """The util-linux listing flags: -J, -o, --list-columns, -n, -r."""
    p.add_argument("-J", "--json", action="store_true", help="JSON output")
    p.add_argument("-o", "--output", metavar="COLS", help="comma-separated columns to show")
    p.add_argument("--list-columns", action="store_true", help="list the columns and exit")
    p.add_argument("-n", "--noheadings", action="store_true", help="no header line")
    p.add_argument("-r", "--raw", action="store_true", help="raw output: no alignment")
