"""ls / ps / tree on the real kernel, cross-checked against lsns, ps and pstree.

Namespaces come from ``unshare --pid --fork --mount-proc --kill-child`` (killing the
launcher by PID SIGKILLs the namespace's PID 1, which ends the namespace). Other work
may run on this machine at the same time, so cross-checks against another tool retry a
few snapshots when processes come and go between the two scans; they never loosen what
is compared.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import pidns
from conftest import children, wait_for
from pidns.errors import NoSuchProcess, ParseError, PermissionDenied, PidnsError
from pidns.procfs.model import PROC_PID_INIT_INO
from pidns.procfs.reader import ProcFS

pytestmark = [pytest.mark.kernel]

if os.geteuid() != 0:
    pytest.skip("building PID namespaces with unshare needs root here", allow_module_level=True)
if shutil.which("unshare") is None:
    pytest.skip("util-linux unshare is not installed", allow_module_level=True)

CLI_ENV = {**os.environ, "PYTHONPATH": str(Path(pidns.__file__).resolve().parent.parent)}
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
ALLOWED = (NoSuchProcess, PermissionDenied, ParseError)






@dataclass
class Ns:
    launcher: subprocess.Popen[bytes]
    init: int  # host PID of the namespace's PID 1
    ino: int


@pytest.fixture
def make_ns(reap_ns: Callable[[int], None]) -> Iterator[Callable[..., Ns]]:
    made: list[Ns] = []

    def make(*cmd: str) -> Ns:
        p = subprocess.Popen([*UNSHARE, *(cmd or ("sleep", "60"))])
        wait_for(lambda: children(p.pid), "the namespace's PID 1")
        init = children(p.pid)[0]
        ino = os.stat(f"/proc/{init}/ns/pid").st_ino
        reap_ns(ino)
        ns = Ns(p, init, ino)
        made.append(ns)
        return ns

    yield make
    for ns in made:
        for pid in (ns.init, ns.launcher.pid):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        ns.launcher.wait(timeout=10)
        wait_for(lambda n=ns: not os.path.exists(f"/proc/{n.init}"), "PID 1 to go")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["python3", "-m", "pidns", *args], capture_output=True, text=True,
                          env=CLI_ENV, timeout=60, stdin=subprocess.DEVNULL, check=False)


def cli_json(*args: str) -> dict[str, list[dict[str, object]]]:
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def agree(check: Callable[[], str | None], tries: int = 5) -> None:
    """Run ``check`` (None: agreed, else why not) until it agrees; fail with the last why."""
    why = None
    for _ in range(tries):
        why = check()
        if why is None:
            return
        time.sleep(0.5)
    raise AssertionError(why)


def test_ls_agrees_with_lsns(make_ns: Callable[..., Ns]) -> None:
    a, b = make_ns(), make_ns()

    def check() -> str | None:
        ours = cli_json("ls", "-J", "-o", "ns,nprocs,pid,init")["namespaces"]
        theirs = json.loads(subprocess.run(["lsns", "-J", "-t", "pid"], capture_output=True,
                                           text=True, check=True).stdout)["namespaces"]
        o = {n["ns"]: (n["nprocs"], n["pid"]) for n in ours if n["nprocs"]}
        t = {n["ns"]: (n["nprocs"], n["pid"]) for n in theirs}
        if a.ino not in o or b.ino not in o:
            return f"our namespaces missing from pidns ls: {o}"
        if o != t:
            return f"pidns ls {o} != lsns {t}"
        return None

    agree(check)


def test_ps_agrees_with_ps(make_ns: Callable[..., Ns]) -> None:
    ns = make_ns("sh", "-c", "sleep 60 & sleep 60 & wait")

    def check() -> str | None:
        # Each scanner sees itself and not the other: leave both scanners out.
        ours = {p["pid"]: p["pidns"] for p in cli_json("ps", "-J", "-o", "pid,pidns,command")[
            "processes"] if "pidns ps -J" not in str(p["command"])}
        out = subprocess.run(["ps", "-e", "-o", "pid=,pidns=,args="], capture_output=True,
                             text=True, check=True).stdout
        theirs = {}
        for line in out.splitlines():
            pid, pidns_, args = line.split(None, 2)
            if args != "ps -e -o pid=,pidns=,args=":
                theirs[int(pid)] = None if pidns_ == "-" else int(pidns_)
        if set(ours) != set(theirs):
            return f"pid sets differ: {set(ours) ^ set(theirs)}"
        diff = {p: (ours[p], theirs[p]) for p in ours if ours[p] != theirs[p]}
        return f"pidns differs: {diff}" if diff else None

    agree(check)
    ours = cli_json("ps", "-J", "--ns", f"ns:{ns.ino}")["processes"]
    assert len(ours) == 3
    assert {p["pidns"] for p in ours} == {ns.ino}


def pstree_edges() -> dict[int, int]:
    """child -> parent from ``pstree -p -A -T -l``: a child starts 3 columns after its
    parent's end, whether on the same line (---, -+-) or below (|-, `-)."""
    out = subprocess.run(["pstree", "-p", "-A", "-T", "-l"], capture_output=True, text=True,
                         check=True).stdout
    ends: dict[int, int] = {}  # end column -> pid of the latest token ending there
    parent: dict[int, int] = {}
    for line in out.splitlines():
        m0 = re.match(r"^[ |]*[|`]-", line)
        start = m0.end() if m0 else 0
        for m in re.finditer(r"\((\d+)\)", line):
            if m.start() < start:
                continue
            pid = int(m.group(1))
            if start - 3 in ends:
                parent[pid] = ends[start - 3]
            ends = {c: p for c, p in ends.items() if c < start}  # deeper columns are done
            ends[m.end()] = pid
            start = m.end() + 3
    return parent


def test_tree_agrees_with_pstree(make_ns: Callable[..., Ns]) -> None:
    ns = make_ns("sh", "-c", "sleep 60 & wait")

    def walk(nodes: list[dict[str, object]], up: int, into: dict[int, int]) -> None:
        for n in nodes:
            pid = n["pid"]
            assert isinstance(pid, int)
            if up:
                into[pid] = up
            walk(n.get("children", []), pid, into)  # type: ignore[arg-type]

    def check() -> str | None:
        ours: dict[int, int] = {}
        walk(cli_json("tree", "-J")["processes"], 0, ours)
        theirs = pstree_edges()
        if ours.get(ns.init) != ns.launcher.pid or theirs.get(ns.init) != ns.launcher.pid:
            return "the namespace's PID 1 is not under its launcher"
        common = set(ours) & set(theirs)
        if len(common) < len(theirs) - 5:
            return f"pstree has edges we lack: {set(theirs) - set(ours)}"
        diff = {c: (ours[c], theirs[c]) for c in common if ours[c] != theirs[c]}
        return f"parents differ: {diff}" if diff else None

    agree(check)
    # Seed scenario 7: PID 1 shown under its launcher, with both PIDs and the boundary.
    text = cli("tree", str(ns.launcher.pid), "--ascii").stdout
    assert f"`- {ns.init},1 sh -c sleep 60 & wait  => pid:[{ns.ino}]" in text


def test_two_namespaces_each_with_pid_1(make_ns: Callable[..., Ns]) -> None:
    a, b = make_ns(), make_ns()
    procs = {p["pid"]: p for p in cli_json("ps", "-J")["processes"]}
    for ns in (a, b):
        p = procs[ns.init]
        assert p["nspid"] == [ns.init, 1]
        assert p["pidns"] == ns.ino
        assert p["level"] == 1
    assert a.init != b.init
    assert a.ino != b.ino
    nss = {n["ns"]: n for n in cli_json("ls", "-J", "-o", "ns,init,level,parent")[
        "namespaces"]}
    host = os.stat("/proc/self/ns/pid").st_ino
    for ns in (a, b):
        assert nss[ns.ino]["init"] == ns.init
        assert nss[ns.ino]["parent"] == host  # from NS_GET_PARENT


def test_child_nspid_and_the_inside_view(make_ns: Callable[..., Ns]) -> None:
    ns = make_ns("sh", "-c", "sleep 60 & wait")
    wait_for(lambda: children(ns.init), "the sleep inside")
    (kid,) = children(ns.init)
    procs = {p["pid"]: p for p in cli_json("ps", "-J")["processes"]}
    assert procs[kid]["nspid"][-1] != 1  # type: ignore[index]
    assert procs[ns.init]["nspid"][-1] == 1  # type: ignore[index]
    inside = cli_json("ps", "-J", "--in", f"pid:{ns.init}", "-o", "pid,ppid,hpid")[
        "processes"]
    # Scenario 9: the namespace sees only its own processes, its init as 1 with ppid 0.
    assert sorted((p["hpid"], p["pid"], p["ppid"]) for p in inside) == sorted(
        [(ns.init, 1, 0), (kid, procs[kid]["nspid"][-1], 1)])  # type: ignore[index]


def test_sweep_every_live_pid_raises_only_documented_errors() -> None:
    fs = ProcFS()
    ok = 0
    seen: set[type[PidnsError]] = set()
    calls = [fs.read_status, fs.read_stat, fs.read_cmdline, fs.ns_id, fs.read_mountinfo,
             fs.read_fd_links, fs.read_uid_map]
    for pid in fs.pids():
        for call in calls:
            try:
                call(pid)  # type: ignore[operator]
                ok += 1
            except ALLOWED as exc:
                seen.add(type(exc))
    assert ok > len(calls) * 10
    snap = fs.snapshot(fds=True)
    assert snap.processes
    # Whatever this machine hides (a VM agent's PID 1 here) is counted, never dropped.
    for prob in snap.problems:
        if prob.kind != "gone" and prob.what == "ns/pid":
            assert snap.by_pid[prob.pid].pidns is None  # type: ignore[index]


def test_bind_mounted_namespace_without_process(tmp_path: Path,
                                                reap_ns: Callable[[int], None]) -> None:
    pin = tmp_path / "pidns"
    pin.touch()
    subprocess.run(["unshare", f"--pid={pin}", "--fork", "true"], check=True, timeout=30)
    try:
        ino = os.stat(pin).st_ino
        assert ino != PROC_PID_INIT_INO
        reap_ns(ino)
        nss = {n["ns"]: n for n in cli_json("ls", "-J", "-o", "ns,nprocs,keptby,command,level")[
            "namespaces"]}
        assert nss[ino]["nprocs"] == 0
        assert nss[ino]["keptby"] == "bind-mount"
        assert nss[ino]["level"] == 1
        assert str(pin) in str(nss[ino]["command"])
    finally:
        subprocess.run(["umount", str(pin)], check=True)


def test_namespace_held_only_by_an_fd(make_ns: Callable[..., Ns]) -> None:
    ns = make_ns()
    fd = os.open(f"/proc/{ns.init}/ns/pid", os.O_RDONLY)
    try:
        os.kill(ns.launcher.pid, 9)
        ns.launcher.wait(timeout=10)
        wait_for(lambda: not os.path.exists(f"/proc/{ns.init}"), "PID 1 to go")
        plain = {n["ns"] for n in cli_json("ls", "-J", "-o", "ns")["namespaces"]}
        assert ns.ino not in plain  # fds are read only on request
        nss = {n["ns"]: n for n in cli_json("ls", "--fds", "-J", "-o", "ns,nprocs,keptby,"
                                                                      "command")["namespaces"]}
        assert nss[ns.ino]["keptby"] == "fd"
        assert f"{os.getpid()}/fd/{fd}" in str(nss[ns.ino]["command"])
    finally:
        os.close(fd)


def test_rootless_says_what_it_cannot_see(make_ns: Callable[..., Ns],
                                          rootless: Callable[..., subprocess.CompletedProcess[str]]
                                          ) -> None:
    ns = make_ns()
    for cmd in ("ls", "ps", "tree"):
        r = rootless(cmd, "-J")
        assert r.returncode == 0, r.stderr
        m = re.search(r"cannot see the PID namespace of (\d+) process", r.stderr)
        assert m, r.stderr
        assert int(m.group(1)) > 1
        assert "permission denied" in r.stderr
    rows = json.loads(rootless("ps", "-J").stdout)["processes"]
    root_owned = [p for p in rows if p["pid"] == ns.init]
    assert root_owned, "a process whose namespace is hidden is still listed"
    assert root_owned[0]["pidns"] is None
    ls = json.loads(rootless("ls", "-J").stdout)["namespaces"]
    assert ns.ino not in {n["ns"] for n in ls}
