"""Renderers and golden CLI output over the fixture tree (tests/golden/*)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from pidns.cli import columns, render
from pidns.cli.main import main

HERE = Path(__file__).resolve().parent.parent
FIX = str(HERE / "fixtures" / "proc" / "basic")
GOLDEN = HERE / "golden"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("PIDNS_REGOLD"):
        path.write_text(text)
    assert text == path.read_text(), f"differs from {path} (PIDNS_REGOLD=1 rewrites)"


@pytest.mark.parametrize(("name", "argv"), [
    ("ls_basic.txt", ["ls"]),
    ("ls_basic_tree.txt", ["ls", "-T", "-o", "NS,LEVEL,NPROCS,PID,KEPTBY"]),
    ("ls_basic.json", ["ls", "-J"]),
    ("ls_basic_tree.json", ["ls", "-J", "-T", "-o", "ns,nprocs"]),
    ("ps_basic.txt", ["ps", "-o", "PIDNS,LEVEL,PID,NSPID,PPID,STAT,COMMAND"]),
    ("ps_basic_raw.txt", ["ps", "-r", "-n", "-o", "PID,NSPID,COMM"]),
    ("ps_basic.json", ["ps", "-J", "-o", "pidns,pid,nspid,ppid,stat"]),
    ("ps_basic_in.txt", ["ps", "--in", "ns:4026532180", "-o", "PID,NSPID,PPID,HPID"]),
    ("tree_basic.txt", ["tree"]),
    ("tree_basic_ascii.txt", ["tree", "--ascii"]),
    ("tree_basic.json", ["tree", "-J"]),
])
def test_golden(capsys: pytest.CaptureFixture[str], name: str, argv: list[str]) -> None:
    rc, out, err = run(capsys, argv[0], "--proc", FIX, *argv[1:])
    assert rc == 0, err
    golden(name, out)
    if name.endswith(".json"):
        doc = json.loads(out)
        assert list(doc) == ["namespaces" if argv[0] == "ls" else "processes"]
    # PID 1's ns link is unreadable in the fixture: every command says so.
    assert "cannot see the PID namespace of 1 process (pid 1)" in err


def test_json_types(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "ps", "--proc", FIX, "-J")
    procs = json.loads(out)["processes"]
    one = next(p for p in procs if p["pid"] == 1)
    assert one["pidns"] is None
    assert one["level"] is None
    for p in procs:
        assert isinstance(p["pid"], int)
        assert isinstance(p["nspid"], list)
        assert all(isinstance(x, int) for x in p["nspid"])
        assert set(p) == {c.name.lower() for c in columns.PS_COLUMNS if c.default}


def test_list_columns_from_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "ps", "--list-columns")
    assert [ln.split()[0] for ln in out.splitlines()] == [c.name for c in columns.PS_COLUMNS]


def test_unknown_column_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "ls", "--proc", FIX, "-o", "NS,BOGUS")
    assert rc == 125
    assert err.startswith("pidns: cannot use column 'BOGUS': unknown column; hint:")


def test_missing_pid_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "ls", "--proc", FIX, "-p", "99902")
    assert rc == 1
    assert "cannot list the namespace of pid 99902: no such process" in err
    rc, _, err = run(capsys, "tree", "--proc", FIX, "424242")
    assert rc == 1
    assert "no such process" in err


COLS = [columns.Column("PID", "", lambda r: 1, True, "number"),
        columns.Column("COMMAND", "", lambda r: "x")]
ROWS: list[dict[str, columns.Value]] = [{"pid": 7, "command": "sleep 60 " + "y" * 60},
                                        {"pid": 12345, "command": "a\nb"}]


def test_table_truncates_command_only_on_a_tty() -> None:
    pipe = render.Env(io.StringIO(), io.StringIO(), isatty=False, width=20)
    tty = render.Env(io.StringIO(), io.StringIO(), isatty=True, width=20)
    assert render.table(ROWS, COLS, pipe) == (
        "  PID COMMAND\n    7 sleep 60 " + "y" * 60 + "\n12345 a?b\n")
    lines = render.table(ROWS, COLS, tty).splitlines()
    assert lines[1] == "    7 sleep 60 yyyy…"
    assert len(lines[1]) == 20


def test_colour_only_when_asked() -> None:
    plain = render.Env(io.StringIO(), io.StringIO(), isatty=True, width=80)
    colour = render.Env(io.StringIO(), io.StringIO(), isatty=True, width=80, color=True)
    assert "\033[" not in render.table(ROWS, COLS, plain)
    assert render.table(ROWS, COLS, colour).startswith(render.BOLD)


def test_raw_escapes_blanks() -> None:
    env = render.Env(io.StringIO(), io.StringIO())
    assert render.table(ROWS, COLS, env, raw=True, noheadings=True) == (
        "7 sleep\\x2060\\x20" + "y" * 60 + "\n12345 a\\x0ab\n")


def test_flatten_deep_chain_without_recursion() -> None:
    chain = list(range(5000))
    flat = render.flatten([0], lambda i: [i + 1] if i + 1 < len(chain) else [], ascii=True)
    assert len(flat) == 5000
    assert flat[2][0] == "   `- "
