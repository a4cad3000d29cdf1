"""Named, detached containers on the real kernel: ``pidns run -d`` and what acts on them.

Every test uses its own state directory (``--state-dir`` under tmp_path, or a 0700
directory owned by uid 65534 for rootless tests), removes each container it starts
(``rm -f``) and checks that no process is left: neither in the container's PID
namespace (``reap_ns``) nor its waiter (pidns-monitor).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import CLI, NOBODY, procs_in_ns

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
PODMAN_ARGS = os.environ.get("PIDNS_PODMAN_ARGS", "--runtime runc --cgroup-manager cgroupfs")
PODMAN = ["podman", *shlex.split(PODMAN_ARGS)]


def _wait_for(cond: Callable[[], bool], what: str, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _gone(pid: int) -> Callable[[], bool]:
    return lambda: not _alive(pid)


def _empty(ino: int) -> Callable[[], bool]:
    return lambda: not procs_in_ns(ino)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _one_line_error(r: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("pidns: cannot "), r.stderr
    assert "; hint: " in lines[0], r.stderr
    for w in words:
        assert w in lines[0], r.stderr


class Ctl:
    """``pidns --state-dir DIR ...`` plus bookkeeping: every container started through
    :meth:`run_d` is removed at teardown, and its namespace and waiter must be gone."""

    def __init__(self, cli: CLI, state: Path, reap_ns: Callable[[int], None],
                 pins: list[int]) -> None:
        self.cli = cli
        self.state = state
        self.reap_ns = reap_ns
        self.pins = pins
        self.ids: list[str] = []
        self.inos: list[int] = []

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        r: subprocess.CompletedProcess[str] = self.cli("--state-dir", str(self.state), *args,
                                                       timeout=timeout)
        return r

    def ok(self, *args: str, timeout: float = 60) -> str:
        r = self(*args, timeout=timeout)
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
        return r.stdout

    def config(self, cid: str) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.state / cid / "config.json").read_text())
        return data

    def run_d(self, *args: str) -> str:
        out = self.ok("run", "-d", *args).strip()
        assert len(out) == 64, out
        assert int(out, 16) >= 0, out
        self.ids.append(out)
        conf = self.config(out)
        ns = conf["namespaces"]
        assert isinstance(ns, dict)
        for pid, ino in ((conf["command_pid"], ns["pid"]), (conf["pid"], conf["pid1_ns"])):
            # Pin the namespace with an nsfs fd until after reap_ns has checked it, so
            # its inode cannot be recycled by another namespace meanwhile (a command
            # that has already exited took its namespace with it: nothing to check).
            try:
                fd = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            if os.fstat(fd).st_ino != ino:
                os.close(fd)
                continue
            self.pins.append(fd)
            self.reap_ns(int(str(ino)))
            self.inos.append(int(str(ino)))
        return out

    def cleanup(self) -> None:
        monitors = []
        for cid in self.ids:
            if (self.state / cid).exists():
                monitors.append(self.config(cid).get("monitor_pid"))
                self("rm", "-f", cid)
            assert not (self.state / cid).exists(), f"state of {cid} left behind"
        for m in monitors:
            if isinstance(m, int):
                _wait_for(_gone(m), f"waiter {m} to exit")
        # a PID 1 whose waiter was killed is reaped by the host's init: give it time
        for ino in self.inos:
            _wait_for(_empty(ino), f"pid:[{ino}] to empty")


@pytest.fixture
def ns_pins() -> Iterator[list[int]]:
    """nsfs fds that keep namespace inodes from being reused; closed after reap_ns."""
    fds: list[int] = []
    yield fds
    for fd in fds:
        os.close(fd)


@pytest.fixture
def ctl(ns_pins: list[int], pidns_cli: CLI, tmp_path: Path,
        reap_ns: Callable[[int], None]) -> Iterator[Ctl]:
    c = Ctl(pidns_cli, tmp_path / "state", reap_ns, ns_pins)
    yield c
    c.cleanup()




def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("this test starts containers as root; not root here")


# ---------------------------------------------------------------- seed 13

def test_docker_walkthrough(ctl: Ctl) -> None:
    """Seed 13: run -d --name, list, inspect --format, ps -fp, environ, exec ps -ef."""
    _need_root()
    name = f"walk-{secrets.token_hex(3)}"
    cid = ctl.run_d("--name", name, "-e", "WALK=through", "--", "sleep", "300")
    listed = ctl.ok("list")
    row = next(ln for ln in listed.splitlines() if name in ln)
    assert row.split()[:3] == [cid[:12], name, "running"]
    pid = int(ctl.ok("inspect", name, "--format", "{{.State.Pid}}"))
    assert pid > 1
    # the same PID by ID prefix and in the JSON
    assert int(ctl.ok("inspect", cid[:6], "--format", "{{.State.Pid}}")) == pid
    obj = json.loads(ctl.ok("inspect", name))[0]
    assert obj["Id"] == cid
    assert obj["Name"] == name
    assert obj["State"]["Running"] is True
    assert obj["State"]["Status"] == "running"
    assert obj["Config"]["Cmd"] == ["sleep", "300"]
    assert obj["Namespaces"]["pid"] == os.stat(f"/proc/{pid}/ns/pid").st_ino
    assert obj["Namespaces"]["pid"] != os.stat("/proc/self/ns/pid").st_ino
    # step 4: the host sees it with `ps -fp PID`, and its environment
    ps = subprocess.run(["ps", "-fp", str(pid)], capture_output=True, text=True, check=True)
    assert "sleep 300" in ps.stdout.splitlines()[1]
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"WALK=through" in environ
    # step 5: inside, PID 1 is the command and ps sees only the namespace
    out = ctl.ok("exec", name, "--", "ps", "-ef").splitlines()
    assert out[0].split()[:2] == ["UID", "PID"]
    procs = {int(ln.split()[1]): ln for ln in out[1:]}
    assert "sleep 300" in procs[1]
    assert procs[1].split()[2] == "0"  # PPID 0: its parent is outside
    assert len(procs) == 2
    assert any("ps -ef" in ln for ln in procs.values())
    # as docker exec: the container's environment; -e overrides it
    assert ctl.ok("exec", name, "sh", "-c", "echo $WALK").strip() == "through"
    assert ctl.ok("exec", "-e", "WALK=x", name, "sh", "-c", "echo $WALK").strip() == "x"
    # top reads the same from the host's /proc
    top = json.loads(ctl.ok("top", name, "-J"))["processes"]
    assert [(p["hpid"], p["pid"]) for p in top] == [(pid, 1)]


def test_ls_ps_tree_name_our_containers(ctl: Ctl) -> None:
    """Seed 1 for pidns's own containers: the CONTAINER column names them."""
    cid = ctl.run_d("--name", "seed1box", "--", "sleep", "300")
    conf = ctl.config(cid)
    ns = conf["namespaces"]
    assert isinstance(ns, dict)
    rows = json.loads(ctl.ok("ls", "-J", "-o", "ns,container"))["namespaces"]
    assert {"ns": ns["pid"], "container": "seed1box"} in rows
    assert all(r["container"] != "seed1box" for r in rows if r["ns"] != ns["pid"])
    procs = json.loads(ctl.ok("ps", "-J", "-o", "pid,container"))["processes"]
    assert {"pid": conf["command_pid"], "container": "seed1box"} in procs
    assert "seed1box" in ctl.ok("tree", str(conf["command_pid"]))


def test_parallel_run_list_rm(ctl: Ctl) -> None:
    """50 concurrent `run -d`, one `list` with 50 distinct running rows, 50 `rm -f`."""
    _need_root()
    n = 50
    tag = secrets.token_hex(3)
    names = [f"par-{tag}-{i}" for i in range(n)]
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda nm: ctl.run_d("--name", nm, "--", "sleep", "300"), names))
    assert len(set(ids)) == n
    rows = json.loads(ctl.ok("list", "-J", "-o", "FULLID,NAME,STATUS,PID"))["containers"]
    assert sorted(r["name"] for r in rows) == sorted(names)
    assert {r["fullid"] for r in rows} == set(ids)
    assert all(r["status"] == "running" for r in rows)
    pids = [r["pid"] for r in rows]
    assert len(set(pids)) == n
    assert all(_alive(p) for p in pids)
    monitors = [ctl.config(cid)["monitor_pid"] for cid in ids]
    with ThreadPoolExecutor(16) as pool:
        done = list(pool.map(lambda nm: ctl("rm", "-f", nm), names))
    assert all(r.returncode == 0 for r in done), [r.stderr for r in done if r.returncode]
    assert ctl.ok("list", "-a", "-n").strip() == ""
    assert [p for p in os.listdir(ctl.state) if not p.startswith(".")] == []
    for p in [*pids, *monitors]:
        assert isinstance(p, int)
        _wait_for(_gone(p), f"process {p} to end")


# ---------------------------------------------------------------- the waiter

def test_waiter_killed_list_and_inspect_stay_truthful(ctl: Ctl) -> None:
    _need_root()
    cid = ctl.run_d("--", "sleep", "300")
    conf = ctl.config(cid)
    monitor, pid = conf["monitor_pid"], conf["pid"]
    assert isinstance(monitor, int)
    assert isinstance(pid, int)
    assert Path(f"/proc/{monitor}/comm").read_text().strip() == "pidns-monitor"
    assert Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(monitor)
    os.kill(monitor, signal.SIGKILL)
    _wait_for(lambda: not _alive(monitor), "the waiter to die")
    # PID 1 lives on (re-parented): still running, same PID
    assert ctl.ok("list", "-n", "-o", "STATUS").strip() == "running"
    assert int(ctl.ok("inspect", cid[:8], "-f", "{{.State.Pid}}")) == pid
    ctl.ok("kill", cid[:8])
    _wait_for(lambda: not _alive(pid), "PID 1 to die")
    assert ctl.ok("list", "-a", "-n", "-o", "STATUS").strip() == "exited (?)"
    state = json.loads(ctl.ok("inspect", cid))[0]["State"]
    assert state["Running"] is False
    assert state["Pid"] == 0
    assert state["ExitCode"] == -1
    assert "waiter" in state["Error"]
    r = ctl("wait", cid)
    _one_line_error(r, 125, "exit status")


def test_recycled_pid_is_not_mistaken_for_the_container(ctl: Ctl) -> None:
    """A record whose PID now names another process (start time / namespace differ)."""
    _need_root()
    cid = ctl.run_d("--", "sh", "-c", "exit 0")
    assert ctl.ok("wait", cid).strip() == "0"
    conf = ctl.config(cid)
    conf["pid"] = os.getpid()  # a live process that is not the container
    (ctl.state / cid / "exit.json").unlink()
    (ctl.state / cid / "config.json").write_text(json.dumps(conf))
    assert ctl.ok("list", "-a", "-n", "-o", "STATUS").strip() == "exited (?)"
    _one_line_error(ctl("kill", cid), 1, "not running")


# ---------------------------------------------------------------- lifecycle

def test_wait_logs_and_exit_codes(ctl: Ctl) -> None:
    _need_root()
    cid = ctl.run_d("--name", "echoer", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert ctl.ok("wait", "echoer").strip() == "3"
    assert ctl.ok("logs", "echoer").splitlines() == ["out", "err"]
    assert ctl.ok("list", "-a", "-n", "-o", "NAME,STATUS").split() == ["echoer", "exited", "(3)"]
    assert ctl.ok("list", "-n").strip() == ""  # without -a only running ones
    state = json.loads(ctl.ok("inspect", cid))[0]["State"]
    assert state["ExitCode"] == 3
    assert state["Status"] == "exited"
    assert state["FinishedAt"] >= state["StartedAt"] > "2000"
    ctl.ok("rm", "echoer")  # exited: no -f needed
    _one_line_error(ctl("inspect", "echoer"), 1, "echoer")


def test_pid_file_and_json_status_fd(ctl: Ctl, tmp_path: Path) -> None:
    _need_root()
    pid_file = tmp_path / "pid"
    r, w = os.pipe()
    try:
        p = subprocess.run(
            [sys.executable, "-m", "pidns", "--state-dir", str(ctl.state), "run", "-d",
             "--name", "pf", "--init", "--pid-file", str(pid_file), "--json-status-fd",
             str(w), "--", "sleep", "300"],
            capture_output=True, text=True, pass_fds=(w,), timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")})
        os.close(w)
        w = -1
        assert p.returncode == 0, p.stderr
        cid = p.stdout.strip()
        ctl.ids.append(cid)
        status = json.loads(os.read(r, 4096))
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    obj = json.loads(ctl.ok("inspect", "pf"))[0]
    assert int(pid_file.read_text()) == obj["State"]["Pid"] == status["child-pid"]
    assert status["command-pid"] == obj["State"]["CommandPid"] != status["child-pid"]
    assert status["pid-namespace"] == obj["Namespaces"]["pid"]
    ctl.ok("rm", "-f", "pf")
    _wait_for(_empty(status["pid-namespace"]), "the namespace to empty")


def test_logs_follow(ctl: Ctl) -> None:
    _need_root()
    ctl.run_d("--name", "ticker", "--", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done")
    assert ctl.ok("logs", "-f", "ticker").split() == ["1", "2", "3"]


def test_kill_signals_and_stop(ctl: Ctl) -> None:
    _need_root()
    ctl.run_d("--name", "sleeper", "--", "sleep", "300")
    # PID 1 without a handler: the kernel drops TERM; still running
    ctl.ok("kill", "-s", "TERM", "sleeper")
    time.sleep(0.2)
    assert ctl.ok("list", "-n", "-o", "STATUS").strip() == "running"
    out = ctl.ok("stop", "-t", "0.3", "sleeper")
    assert "then SIGKILL" in out
    assert "exit code 137" in out
    assert " torn down" in out
    assert ctl.ok("wait", "sleeper").strip() == "137"
    _one_line_error(ctl("kill", "sleeper"), 1, "not running")
    _one_line_error(ctl("stop", "sleeper"), 1, "not running")
    # a stop signal the command handles: no SIGKILL needed
    script = "trap 'exit 5' USR1; while :; do sleep 0.05; done"
    ctl.run_d("--name", "trapper", "--stop-signal", "usr1", "--", "sh", "-c", script)
    stop_sig = ctl.ok("inspect", "trapper", "-f", "{{.Config.StopSignal}}").strip()
    assert stop_sig == "SIGUSR1"
    time.sleep(0.2)  # let the shell install its trap
    out = ctl.ok("stop", "trapper")
    assert "stopped by SIGUSR1;" in out
    assert "exit code 5" in out
    # kill by number, and by name with SIG
    ctl.run_d("--name", "k9", "--", "sleep", "300")
    ctl.ok("kill", "-s", "9", "k9")
    assert ctl.ok("wait", "k9").strip() == "137"
    ctl.run_d("--name", "kint", "--init", "--", "sleep", "300")
    ctl.ok("kill", "-s", "SIGINT", "kint")  # pidns-init forwards it; sleep dies of it
    assert ctl.ok("wait", "kint").strip() == "130"


def test_rm_running_refused_then_forced(ctl: Ctl) -> None:
    _need_root()
    cid = ctl.run_d("--name", "busy", "--", "sleep", "300")
    pid = int(ctl.ok("inspect", "busy", "-f", "{{.State.Pid}}"))
    _one_line_error(ctl("rm", "busy"), 1, "busy", "running")
    assert _alive(pid)
    assert (ctl.state / cid).is_dir()
    ctl.ok("rm", "-f", "busy")
    assert not (ctl.state / cid).exists()
    _wait_for(lambda: not _alive(pid), "PID 1 to die")


def test_init_and_nest(ctl: Ctl) -> None:
    _need_root()
    ctl.run_d("--name", "deep", "--init", "--nest", "3", "--hostname", "box", "--",
              "sleep", "300")
    obj = json.loads(ctl.ok("inspect", "deep"))[0]
    assert obj["Config"]["Init"] is True
    assert obj["Config"]["Nest"] == 3
    pid, cmd_pid = obj["State"]["Pid"], obj["State"]["CommandPid"]
    assert pid != cmd_pid
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "pidns-init"
    nspid = next(ln for ln in Path(f"/proc/{cmd_pid}/status").read_text().splitlines()
                 if ln.startswith("NSpid:")).split()[1:]
    assert len(nspid) == len(next(
        ln for ln in Path("/proc/self/status").read_text().splitlines()
        if ln.startswith("NSpid:")).split()[1:]) + 3
    assert nspid[-1] == "2"  # CMD is PID 2 under pidns-init, in the deepest namespace
    out = ctl.ok("exec", "deep", "--", "sh", "-c", "hostname; ps -o pid,args")
    lines = out.splitlines()
    assert lines[0] == "box"
    assert any(ln.split()[:2] == ["2", "sleep"] for ln in lines[1:])
    out = ctl.ok("stop", "-t", "5", "deep")
    assert "stopped by SIGTERM;" in out
    assert "exit code 143" in out


def test_exec_status_signals_and_pid_ref(ctl: Ctl) -> None:
    _need_root()
    ctl.run_d("--name", "target", "--", "sleep", "300")
    pid = int(ctl.ok("inspect", "target", "-f", "{{.State.Pid}}"))
    assert ctl("exec", "target", "sh", "-c", "exit 42").returncode == 42
    assert ctl("exec", "target", "sh", "-c", "kill -TERM $$").returncode == 128 + 15
    _one_line_error(ctl("exec", "target", "no-such-cmd"), 127, "no-such-cmd")
    _one_line_error(ctl("exec", "target", "/etc/hostname"), 126)
    # pid:N works as a target too; -e and -w reach the command
    out = ctl.ok("exec", "-e", "K=V", "-w", "/tmp", f"pid:{pid}", "--", "sh", "-c",
                 'echo "$K $(pwd) $$"')
    assert out.split()[:2] == ["V", "/tmp"]
    assert int(out.split()[2]) > 1
    # a signal to the exec CLI reaches the command
    p = subprocess.Popen(
        ["python3", "-m", "pidns", "--state-dir", str(ctl.state), "exec", "target", "--",
         "sh", "-c", "trap 'exit 9' USR1; echo ready; while :; do sleep 0.05; done"],
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGUSR1)
        assert p.wait(timeout=10) == 9
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_exec_into_rootfs_and_user_containers(ctl: Ctl, rootfs: Path) -> None:
    _need_root()
    ctl.run_d("--name", "bb", "--rootfs", str(rootfs), "--", "sleep", "300")
    out = ctl.ok("exec", "bb", "--", "ps")
    rows = [ln.split() for ln in out.splitlines()[1:]]
    assert rows[0][0] == "1"
    assert "sleep" in " ".join(rows[0])
    assert ctl.ok("exec", "bb", "--", "ls", "/bin/busybox").strip() == "/bin/busybox"
    ctl.run_d("--name", "usr", "--user", "--", "sleep", "300")
    pid = int(ctl.ok("inspect", "usr", "-f", "{{.State.Pid}}"))
    assert os.stat(f"/proc/{pid}/ns/user").st_ino != os.stat("/proc/self/ns/user").st_ino
    out = ctl.ok("exec", "usr", "--", "sh", "-c",
                 "readlink /proc/self/ns/user; ps -o pid=,args= -p 1")
    assert out.splitlines()[0] == f"user:[{os.stat(f'/proc/{pid}/ns/user').st_ino}]"
    assert out.splitlines()[1].split() == ["1", "sleep", "300"]


# ---------------------------------------------------------------- bad input

def test_bad_input_one_line_each(ctl: Ctl) -> None:
    _need_root()
    ctl.run_d("--name", "dup", "--", "sleep", "300")
    _one_line_error(ctl("run", "-d", "--name", "dup", "--", "true"), 125, "dup", "in use")
    _one_line_error(ctl("inspect", "nosuch"), 1, "nosuch")
    _one_line_error(ctl("exec", "nosuch", "true"), 1, "nosuch")
    _one_line_error(ctl("rm", "nosuch"), 1, "nosuch")
    _one_line_error(ctl("run", "-d", "--name", "1234", "--", "true"), 125, "not all digits")
    _one_line_error(ctl("run", "-d", "--name", "host", "--", "true"), 125)
    _one_line_error(ctl("run", "-d", "--name", "-x", "--", "true"), 125)
    _one_line_error(ctl("run", "-d", "--stop-signal", "NOPE", "--", "true"), 125, "NOPE")
    _one_line_error(ctl("kill", "-s", "BOGUS", "dup"), 125, "BOGUS")
    _one_line_error(ctl("run", "--name", "x", "--", "true"), 125, "--detach")
    _one_line_error(ctl("run", "-d", "--", "no-such-program-x"), 127, "no-such-program-x")
    _one_line_error(ctl("run", "-d", "--", "/etc/hostname"), 126)
    # failed starts leave nothing behind
    assert len([p for p in os.listdir(ctl.state) if not p.startswith(".")]) == 1


def test_ambiguous_prefix_and_corrupt_entry(ctl: Ctl) -> None:
    _need_root()
    good = ctl.run_d("--name", "good", "--", "sleep", "300")
    # two hand-made entries sharing a 6-digit prefix no real ID here has
    prefix = next(p for p in (f"{i:06x}" for i in range(1 << 20)) if not good.startswith(p))
    for tail in ("0" * 58, "1" * 58):
        d = ctl.state / (prefix + tail)
        d.mkdir(mode=0o700)
        (d / "config.json").write_text(json.dumps({"id": prefix + tail, "cmd": ["x"]}))
    _one_line_error(ctl("inspect", prefix), 1, "matches 2")
    # a corrupt entry: `list` shows it as unknown with a warning; the rest works
    (ctl.state / (prefix + "1" * 58) / "config.json").write_text('{"id": "half')
    r = ctl("list", "-a", "-o", "FULLID,NAME,STATUS")
    assert r.returncode == 0
    rows = {ln.split()[0]: ln.split()[1:] for ln in r.stdout.splitlines()[1:]}
    assert rows[prefix + "1" * 58] == ["unknown"]
    assert rows[good] == ["good", "running"]
    assert "warning" in r.stderr
    assert "corrupt" in r.stderr
    assert prefix in r.stderr
    assert int(ctl.ok("inspect", "good", "-f", "{{.State.Pid}}")) > 1
    assert ctl.ok("inspect", prefix + "1", "-f", "{{.State.Status}}").strip() == "unknown"
    ctl.ok("rm", prefix + "1")
    ctl.ok("rm", prefix + "0")
    # a symlink planted as config.json is not followed
    victim = ctl.state / "victim.json"
    victim.write_text(json.dumps(ctl.config(good)))
    cfg = ctl.state / good / "config.json"
    saved = cfg.read_text()
    cfg.unlink()
    cfg.symlink_to(victim)
    assert ctl.ok("list", "-a", "-n", "-o", "STATUS").strip() == "unknown"
    cfg.unlink()
    cfg.write_text(saved)
    victim.unlink()


def test_state_dir_of_another_user_is_refused(ctl: Ctl, pidns_cli: CLI,
                                               tmp_path: Path) -> None:
    _need_root()
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    os.chown(other, NOBODY, NOBODY)
    r = pidns_cli("--state-dir", str(other), "list")
    _one_line_error(r, 125, "owned by uid 65534")
    r = pidns_cli("--state-dir", str(other), "run", "-d", "--", "sleep", "1")
    _one_line_error(r, 125, "owned by uid 65534")
    assert os.listdir(other) == []


# ---------------------------------------------------------------- rootless

@pytest.fixture
def nobody_state() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="pidns-state-"))
    os.chown(d, NOBODY, NOBODY)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _pin(pins: list[int], pid: int, reap_ns: Callable[[int], None]) -> int:
    fd = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    pins.append(fd)
    ino = os.fstat(fd).st_ino
    reap_ns(ino)
    return ino


def test_rootless_lifecycle(ns_pins: list[int], rootless: CLI, nobody_state: Path,
                            reap_ns: Callable[[int], None]) -> None:
    sd = ["--state-dir", str(nobody_state)]
    r = rootless(*sd, "run", "-d", "--name", "rl", "--", "sleep", "300")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        conf = json.loads((nobody_state / cid / "config.json").read_text())
        assert _pin(ns_pins, conf["command_pid"], reap_ns) == conf["namespaces"]["pid"]
        assert conf["user"] is True
        assert os.stat(f"/proc/{conf['pid']}").st_uid == NOBODY
        assert os.stat(nobody_state / cid).st_mode & 0o777 == 0o700
        r = rootless(*sd, "list", "-n", "-o", "NAME,STATUS")
        assert r.stdout.split() == ["rl", "running"], r.stderr
        r = rootless(*sd, "exec", "rl", "--", "sh", "-c", "id -u; ps -o pid=,args= -p 1")
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0] == "0"
        assert r.stdout.splitlines()[1].split() == ["1", "sleep", "300"]
        pid = int(rootless(*sd, "inspect", "rl", "--format", "{{.State.Pid}}").stdout)
        assert pid == conf["pid"]
        _one_line_error(rootless(*sd, "rm", "rl"), 1, "running")
        r = rootless(*sd, "stop", "-t", "0.2", "rl")
        assert r.returncode == 0, r.stderr
        assert "exit code 137" in r.stdout
        assert rootless(*sd, "wait", "rl").stdout.strip() == "137"
    finally:
        rootless(*sd, "rm", "-f", cid)
    assert not (nobody_state / cid).exists()
    _wait_for(lambda: not procs_in_ns(conf["namespaces"]["pid"]), "namespace to empty")
    _wait_for(lambda: not _alive(conf["monitor_pid"]), "waiter to exit")


def test_rootless_default_state_dir(rootless: CLI, nobody_state: Path) -> None:
    """Without --state-dir a rootless caller uses $XDG_RUNTIME_DIR/pidns (the fixture
    sets XDG_RUNTIME_DIR=/tmp; PIDNS_STATE_DIR wins over it)."""
    r = rootless("list", "-a")
    assert r.returncode == 0, r.stderr
    # root's default is refused to others: /run/pidns (when it exists) is root's
    r = rootless("--state-dir", "/run", "list")
    _one_line_error(r, 125, "owned by uid 0")


# ---------------------------------------------------------------- foreign engines

def test_inspect_podman_container(ns_pins: list[int], rootfs: Path, pidns_cli: CLI,
                                  reap_ns: Callable[[int], None]) -> None:
    _need_root()
    if shutil.which("podman") is None:
        if os.environ.get("CI"):
            pytest.fail("podman is not installed on CI")
        pytest.skip("podman is not installed (apt-get install podman)")
    name = f"pidns-test-{secrets.token_hex(4)}"
    env = {**os.environ, "PIDNS_PODMAN_ARGS": PODMAN_ARGS}
    ino = 0

    def sh(*argv: str, check: bool = True) -> str:
        return subprocess.run(list(argv), capture_output=True, text=True, check=check,
                              timeout=120, stdin=subprocess.DEVNULL).stdout

    try:
        sh(*PODMAN, "run", "-d", "--name", name, "--network", "none", "--ulimit",
           "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--rootfs", str(rootfs),
           "sleep", "300")
        want = int(sh(*PODMAN, "inspect", "--format", "{{.State.Pid}}", name))
        ino = _pin(ns_pins, want, reap_ns)
        r = pidns_cli("inspect", f"podman:{name}", "--format", "{{.State.Pid}}", env=env)
        assert r.returncode == 0, r.stderr
        assert int(r.stdout) == want
        r = pidns_cli("exec", f"podman:{name}", "--", "ps", env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[1].split()[0] == "1"
        assert "sleep 300" in r.stdout.splitlines()[1]
    finally:
        sh(*PODMAN, "rm", "-f", "-t", "0", name, check=False)
    assert name not in sh(*PODMAN, "ps", "-a", "--format", "{{.Names}}").split()
    if ino:
        _wait_for(_empty(ino), "podman's namespace to empty")
