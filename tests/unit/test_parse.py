"""Pure /proc parsers: fixture text, the awkward cases, and fuzzing (only ParseError)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pidns.errors import ParseError
from pidns.procfs import parse
from pidns.procfs.model import NsId

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "proc" / "basic"

STATUS = (
    "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4541\nNgid:\t0\n"
    "Pid:\t4541\nPPid:\t4540\nTracerPid:\t0\nUid:\t1000\t1000\t1000\t1000\n"
    "Gid:\t0\t0\t0\t0\nNStgid:\t4541\t7\t1\nNSpid:\t4541\t7\t1\nNSpgid:\t4540\t0\t0\n"
)


def test_status_chain_outermost_first() -> None:
    s = parse.parse_status(STATUS)
    assert (s.pid, s.ppid, s.name, s.state, s.uid) == (4541, 4540, "sleep", "S", 1000)
    assert s.nspid == (4541, 7, 1)
    assert s.has_nspid
    assert parse.parse_status(STATUS.encode()) == s


def test_status_without_nspid_line() -> None:
    s = parse.parse_status(STATUS.replace("NSpid:\t4541\t7\t1\n", ""))
    assert s.nspid == (4541,)
    assert not s.has_nspid


@pytest.mark.parametrize("bad", [
    "", "Name:\tx\n", "Name:\tx\nPid:\tabc\nPPid:\t1\n",
    "Name:\tx\nPid:\t5\nPPid:\t1\nNSpid:\t6\t1\n",  # chain must start with Pid
])
def test_status_garbled(bad: str) -> None:
    with pytest.raises(ParseError):
        parse.parse_status(bad)


def test_stat_comm_with_parens_and_spaces() -> None:
    # proc(5) field N is rest[N-3] after the split at the LAST ')'.
    line = "25101 (a) (b) S 25060 24658 2777 0 -1 4194304 78 0 0 0 5 7 0 0 20 0 1 0 123456 0 0"
    s = parse.parse_stat(line)
    assert (s.pid, s.comm, s.state, s.ppid, s.pgrp, s.session) == (
        25101, "a) (b", "S", 25060, 24658, 2777)
    assert (s.utime, s.stime, s.starttime) == (5, 7, 123456)


def test_stat_captured_odd_comm() -> None:
    odd = [p for p in FIX.iterdir() if (p / "stat").exists()
           and b"(a) (b)" in (p / "stat").read_bytes()]
    assert len(odd) == 1
    s = parse.parse_stat((odd[0] / "stat").read_bytes())
    assert s.comm == "a) (b"
    assert s.pid == int(odd[0].name)


def test_cmdline() -> None:
    assert parse.parse_cmdline(b"sleep\x0060\x00") == ("sleep", "60")
    assert parse.parse_cmdline(b"") == ()
    assert parse.parse_cmdline(b"nginx: worker process") == ("nginx: worker process",)
    assert parse.parse_cmdline(b"a\x00\x00b\x00") == ("a", "", "b")


def test_ns_link() -> None:
    assert parse.parse_ns_link("pid:[4026531836]") == ("pid", 4026531836)
    for bad in ("pid:4026531836", "pid:[]", ":[1]", "EACCES", "pid:[12x]"):
        with pytest.raises(ParseError):
            parse.parse_ns_link(bad)


def test_uid_map() -> None:
    m = parse.parse_uid_map("         0       1000          1\n         1     100000      65536\n")
    assert [(x.inside, x.outside, x.count) for x in m] == [(0, 1000, 1), (1, 100000, 65536)]
    with pytest.raises(ParseError):
        parse.parse_uid_map("0 1\n")


MOUNTINFO = (
    "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
    "200 22 0:4 pid:[4026532210] /run/pidns/my\\040ns rw shared:5 - nsfs nsfs rw\n"
    "201 22 0:4 net:[4026532300] /run/netns/x rw - nsfs nsfs rw\n"
)


def test_mountinfo_and_nsfs_bind_mounts() -> None:
    ms = parse.parse_mountinfo(MOUNTINFO)
    assert [m.fstype for m in ms] == ["ext4", "nsfs", "nsfs"]
    assert ms[1].mount_point == "/run/pidns/my ns"
    assert ms[1].dev == parse.makedev(0, 4) == 4
    found = parse.nsfs_mounts(ms)
    assert found == {NsId(4, 4026532210): ["/run/pidns/my ns"]}
    with pytest.raises(ParseError):
        parse.parse_mountinfo("1 2 3\n")


PARSERS = [parse.parse_status, parse.parse_stat, parse.parse_cmdline, parse.parse_ns_link,
           parse.parse_uid_map, parse.parse_mountinfo]


@pytest.mark.parametrize("fn", PARSERS, ids=lambda f: f.__name__)
@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=400), st.text(max_size=400)))
def test_parsers_raise_only_parseerror(fn: object, data: bytes | str) -> None:
    try:
        fn(data)  # type: ignore[operator]
    except ParseError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["Name:\tx", "Pid:\t5", "PPid:\t1", "NSpid:\t5\t1",
                                 "Uid:\t0", "State:\tR", "NSpid:\t-1", "Pid:\t\u0661",
                                 "Uid:", "garbage"]), max_size=8))
def test_status_fuzz_with_real_keys(lines: list[str]) -> None:
    try:
        s = parse.parse_status("\n".join(lines))
    except ParseError:
        return
    assert s.nspid[0] == s.pid >= 0
