"""`pidns run` and the Python API on the real kernel: isolation, statuses, signals,
init, nesting, the launcher's death, interactive use, rootless use, bad input."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import pidns
from conftest import CLI, PKG_DIR, children, pin_ns, procs_in_ns, wait_for
from pidns._kernel import sys as ksys
from pidns.ops import spawn as ospawn

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]


def own_level() -> int:
    return ospawn.own_level()


def cli_popen(*args: str, **kw: object) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(PKG_DIR.parent))
    return subprocess.Popen([sys.executable, "-m", "pidns", *args], env=env, text=True,
                            stdin=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]






def nspid(pid: int) -> tuple[int, ...]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return tuple(int(x) for x in line.split()[1:])
    raise AssertionError("no NSpid")


# --- isolation -----------------------------------------------------------------------

def test_command_is_pid_1_and_ps_sees_only_the_namespace(pidns_cli: CLI) -> None:
    r = pidns_cli("run", "--", "sh", "-c", "echo $$; ps -e -o pid=,comm=")
    assert r.returncode == 0, r.stderr
    first, *rows = r.stdout.split("\n")
    assert first == "1"
    listed = [row.split() for row in rows if row.strip()]
    assert listed[0] == ["1", "sh"]
    assert [int(p) for p, _ in listed] == sorted(int(p) for p, _ in listed)
    assert {c for _, c in listed} == {"sh", "ps"}  # nothing of the host


def test_proc_inside_is_the_namespaces_own(pidns_cli: CLI) -> None:
    r = pidns_cli("run", "--", "sh", "-c", "readlink /proc/self/ns/pid; readlink /proc/1/ns/pid")
    a, b = r.stdout.split()
    assert a == b
    assert a.startswith("pid:[")


def test_no_mount_proc_keeps_the_host_proc(pidns_cli: CLI) -> None:
    r = pidns_cli("run", "--no-mount-proc", "--", "sh", "-c",
                  "echo $$; ls /proc | grep -c '^[0-9]'")
    pid, count = r.stdout.split()
    assert pid == "1"
    assert int(count) > 5  # the host's processes, as unshare without --mount-proc


def test_two_namespaces_each_have_a_pid_1(reap_ns: Callable[[int], None]) -> None:
    with pidns.Sandbox(["sleep", "60"]) as a, pidns.Sandbox(["sleep", "60"]) as b:
        reap_ns(a.ns.ino)
        reap_ns(b.ns.ino)
        assert a.ns.ino != b.ns.ino
        assert a.pid != b.pid
        assert a.translate(1) == a.pid
        assert b.translate(1) == b.pid
        assert a.inner_pid(a.pid) == 1 == b.inner_pid(b.pid)
        assert nspid(a.pid)[-1] == 1 == nspid(b.pid)[-1]


def test_nspid_chain_from_the_host(reap_ns: Callable[[int], None]) -> None:
    with pidns.Sandbox(["sleep", "60"], nest=3) as box:
        reap_ns(box.ns.ino)
        chain = nspid(box.command_pid)
        assert chain[0] == box.command_pid
        assert chain[-1] == 1
        assert len(chain) == 4  # our level, then 3 levels down
        assert box.ns.level == own_level() + 3
        assert nspid(box.pid)[-1] == 1
        assert len(nspid(box.pid)) == 2


def test_a_process_cannot_see_or_signal_its_ancestors(pidns_cli: CLI) -> None:
    # seed 9: the launcher's PID (as a number) means nothing inside
    me = os.getpid()
    r = pidns_cli("run", "--", "sh", "-c", f"test -e /proc/{me} && echo visible; "
                  f"kill -0 {me} 2>/dev/null && echo signalled; echo done")
    assert r.stdout.strip() == "done"


# --- statuses ------------------------------------------------------------------------

def test_exit_statuses_0_to_255_round_trip() -> None:
    for n in range(256):
        assert pidns.run(["sh", "-c", f"exit {n}"]).returncode == n


@pytest.mark.parametrize("n", [0, 1, 2, 126, 127, 128, 255])
def test_cli_returns_the_commands_status(pidns_cli: CLI, n: int) -> None:
    assert pidns_cli("run", "--", "sh", "-c", f"exit {n}").returncode == n


def test_killed_by_signal_is_128_plus_n(pidns_cli: CLI) -> None:
    # CMD is not PID 1 under --init, so SIGKILL from itself works
    r = pidns_cli("run", "--init", "--", "sh", "-c", "kill -9 $$")
    assert r.returncode == 128 + 9
    with pidns.Sandbox(["sleep", "60"]) as box:
        box.terminate()
        assert box.wait(5) == -signal.SIGTERM  # subprocess's convention in the API


def test_init_makes_cmd_pid_2_and_returns_its_status(pidns_cli: CLI) -> None:
    r = pidns_cli("run", "--init", "--", "sh", "-c", "echo $$; ps -o pid=,comm= -p 1; exit 5")
    assert r.returncode == 5
    pid, one = r.stdout.split("\n", 1)
    assert pid == "2"
    assert one.split() == ["1", "pidns-init"]


# --- signals -------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                                 signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2])
@pytest.mark.parametrize("init", [False, True])
def test_signal_ends_handlerless_pid_1(sig: signal.Signals, init: bool) -> None:
    p = cli_popen("run", *(["--init"] if init else []), "--", "sleep", "100")
    try:
        wait_for(lambda: any(children(p.pid)), "PID 1")
        one = children(p.pid)[0]
        ino = os.stat(f"/proc/{one}/ns/pid").st_ino
        pin = pin_ns(ino)
        p.send_signal(sig)
        assert p.wait(10) == 128 + sig
        assert procs_in_ns(ino) == []
        if pin is not None:
            os.close(pin)
    finally:
        p.kill()
        p.wait()


def test_signal_reaches_pid_1_with_a_handler() -> None:
    p = cli_popen("run", "--", "sh", "-c", "trap 'exit 9' USR1; while :; do sleep 0.05; done")
    try:
        wait_for(lambda: any(children(p.pid)), "PID 1")
        one = children(p.pid)[0]
        wait_for(lambda: ksys_handles(one, signal.SIGUSR1), "the trap")
        p.send_signal(signal.SIGUSR1)
        assert p.wait(10) == 9
    finally:
        p.kill()
        p.wait()


def ksys_handles(pid: int, sig: int) -> bool:
    from pidns.ops.launcher import handles

    return handles(pid, sig)


def test_ignored_signal_does_not_end_the_namespace() -> None:
    p = cli_popen("run", "--", "sh", "-c", "trap '' TERM; sleep 1; exit 4")
    try:
        wait_for(lambda: any(children(p.pid)), "PID 1")
        one = children(p.pid)[0]
        wait_for(lambda: ksys_handles(one, signal.SIGTERM), "the trap")
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 4
    finally:
        p.kill()
        p.wait()


# --- init and orphans ----------------------------------------------------------------

ORPHANS = r"""
import os, sys, time
n = int(sys.argv[1])
for _ in range(n):
    if os.fork() == 0:
        if os.fork() == 0:
            os._exit(0)
        os._exit(0)
    os.waitpid(-1, 0)
def zombies():
    z = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    z += f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                pass
    return z
end = time.monotonic() + 10
while zombies() and time.monotonic() < end:
    time.sleep(0.05)
print(zombies())
"""


def test_init_reaps_an_orphan_storm(pidns_cli: CLI) -> None:
    r = pidns_cli("run", "--init", "--", sys.executable, "-S", "-c", ORPHANS, "2000",
                  timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"


def test_without_init_orphans_stay_zombies(pidns_cli: CLI) -> None:
    # the contrast: PID 1 that never waits leaves them (why --init exists)
    code = ORPHANS.replace("end = time.monotonic() + 10", "end = time.monotonic() + 0.3")
    r = pidns_cli("run", "--", sys.executable, "-S", "-c", code, "50", timeout=60)
    assert int(r.stdout.strip()) == 50


# --- the launcher's death ------------------------------------------------------------

def descendants(pid: int) -> dict[int, str]:
    """Every descendant of ``pid`` -> its start time (so a reused PID is not confused)."""
    out: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in children(todo.pop()):
            try:
                out[child] = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[19]
            except OSError:
                continue
            todo.append(child)
    return out


def alive(pid: int, start: str) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19] == start
    except OSError:
        return False


@pytest.mark.parametrize("extra", [[], ["--init"], ["--nest", "3"], ["--user"]])
def test_launcher_sigkill_leaves_no_process(extra: list[str]) -> None:
    p = cli_popen("run", *extra, "--", "sh", "-c", "sleep 100 & sleep 100 & wait")
    try:
        # the two sleeps, their shell, and any init/relays above them
        wait_for(lambda: list(_comms(descendants(p.pid))).count("sleep") == 2, "two sleeps")
        tree = descendants(p.pid)
        inos = {os.stat(f"/proc/{x}/ns/pid").st_ino for x in tree}
        pins = [fd for fd in map(pin_ns, inos) if fd is not None]  # no inode reuse
        p.kill()
        p.wait()
        wait_for(lambda: not any(alive(x, t) for x, t in tree.items()), "the tree to die")
        assert all(procs_in_ns(ino) == [] for ino in inos)
        for fd in pins:
            os.close(fd)
    finally:
        p.kill()
        p.wait()


def _comms(pids: dict[int, str]) -> list[str]:
    out = []
    for x in pids:
        try:
            out.append(Path(f"/proc/{x}/comm").read_text().strip())
        except OSError:
            pass
    return out


def test_sandbox_exit_ends_the_namespace_and_execs() -> None:
    with pidns.Sandbox(["sleep", "60"]) as box:
        ino = box.ns.ino  # pinned by the sandbox's own fd until the block ends
        helper = box.exec(["sleep", "60"])
        wait_for(lambda: len(procs_in_ns(ino)) == 2, "two members")
        assert box.inner_pid(helper.pid) == 2
        pin = pin_ns(ino)
    assert procs_in_ns(ino) == []
    if pin is not None:
        os.close(pin)
    assert helper.returncode == -signal.SIGKILL
    assert box.returncode == -signal.SIGKILL


# --- interactive ---------------------------------------------------------------------

def _read_until(fd: int, pattern: bytes, timeout: float = 15) -> bytes:
    buf = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            if re.search(pattern, buf):
                return buf
    raise AssertionError(f"no {pattern!r} in {buf!r}")


def test_interactive_bash_through_a_pty() -> None:
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.environ.update(PS1="PROMPT> ", TERM="dumb", PYTHONPATH=str(PKG_DIR.parent))
        os.execv(sys.executable, [sys.executable, "-m", "pidns", "run", "--", "bash",
                                  "--norc", "--noprofile", "-i"])
    try:
        _read_until(fd, rb"PROMPT> ")
        os.write(fd, b"echo pid=$$; set -o | grep monitor\n")
        out = _read_until(fd, rb"\nmonitor\s+\w+")
        assert b"pid=1" in out
        assert re.search(rb"monitor\s+on", out)
        _read_until(fd, rb"PROMPT> ")
        os.write(fd, b"sleep 100\n")
        time.sleep(0.5)
        os.write(fd, b"\x03")  # Ctrl-C: the foreground job, not the shell
        _read_until(fd, rb"PROMPT> ")
        os.write(fd, b"echo after=$?\n")
        assert b"after=130" in _read_until(fd, rb"after=\d+")
        os.write(fd, b"exit 7\n")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 7
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


# --- options -------------------------------------------------------------------------



def test_rootfs_hostname_env_workdir(pidns_cli: CLI, rootfs: Path) -> None:
    r = pidns_cli("run", "--rootfs", str(rootfs), "--hostname", "box", "-e", "FOO=bar",
                  "--env=BAZ=q u x", "-w", "/tmp", "--", "/bin/sh", "-c",
                  'echo $$ $(hostname) "$FOO" "$BAZ" $(pwd); ls /proc/1/ns/pid; ls /')
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "1 box bar q u x /tmp"
    assert lines[1] == "/proc/1/ns/pid"
    assert "busybox" not in lines[2:]
    assert "bin" in lines[2:]
    assert os.uname().nodename != "box"


def test_init_and_nest_with_rootfs(pidns_cli: CLI, rootfs: Path) -> None:
    r = pidns_cli("run", "--init", "--nest", "2", "--user", "--rootfs", str(rootfs), "--",
                  "/bin/sh", "-c", "echo $$; cat /proc/self/status | grep NSpid")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "2"


def test_pid_file_and_json_status_fd(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    r_fd, w_fd = os.pipe()
    p = cli_popen("run", "--init", "--pid-file", str(pidfile), "--json-status-fd",
                  str(w_fd), "--", "sh", "-c", "exit 3", pass_fds=(w_fd,))
    os.close(w_fd)
    with os.fdopen(r_fd) as f:
        lines = [json.loads(line) for line in f]
    assert p.wait(10) == 3
    start, end = lines
    assert set(start) == {"child-pid", "command-pid", "pid-namespace"}
    assert start["command-pid"] != start["child-pid"]
    assert end == {"exit-code": 3}
    assert not pidfile.exists()  # removed at exit


def test_pid_file_names_pid_1_while_running(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    p = cli_popen("run", "--pid-file", str(pidfile), "--", "sleep", "60")
    try:
        wait_for(pidfile.exists, "the pid file")
        host = int(pidfile.read_text())
        assert children(p.pid) == [host]
        assert nspid(host)[-1] == 1
    finally:
        p.terminate()
        p.wait()


def test_nest_32_works_and_33_fails_clearly(pidns_cli: CLI) -> None:
    room = 32 - own_level()
    r = pidns_cli("run", "--nest", str(room), "--", "sh", "-c", "echo ok")
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
    r = pidns_cli("run", "--nest", "33", "--", "touch", "/nonexistent-marker")
    assert r.returncode == 125
    assert r.stderr.count("\n") == 1
    assert "32" in r.stderr
    assert "hint:" in r.stderr


def test_the_kernels_own_limit_is_reported(pidns_cli: CLI) -> None:
    # at level 32, one more PID namespace is refused by the kernel itself
    room = 32 - own_level()
    env = f"PYTHONPATH={PKG_DIR.parent}"
    r = pidns_cli("run", "--nest", str(room), "--", "env", env, sys.executable, "-m", "pidns",
                  "run", "--", "echo", "ran")
    assert r.returncode == 125
    assert "ran" not in r.stdout
    assert r.stderr.startswith("pidns: cannot ")
    assert "hint:" in r.stderr


# --- bad input: one line, the right status, nothing run ------------------------------

@pytest.mark.parametrize(("args", "status"), [
    (["--", "no-such-command-xyz"], 127),
    (["--", "/etc/passwd"], 126),
    (["--rootfs", "/no/such/dir", "--", "touch", "{marker}"], 125),
    (["--rootfs", "/etc/passwd", "--", "touch", "{marker}"], 125),
    (["--nest", "0", "--", "touch", "{marker}"], 125),
    (["--nest", "33", "--", "touch", "{marker}"], 125),
    (["--nest", "x", "--", "touch", "{marker}"], 125),
    (["--bogus", "--", "touch", "{marker}"], 125),
    (["--env", "NOEQUALS", "--", "touch", "{marker}"], 125),
    (["--hostname", "x" * 100, "--", "touch", "{marker}"], 125),
    (["--workdir", "/no/such/dir", "--", "touch", "{marker}"], 125),
    (["--json-status-fd", "999", "--", "touch", "{marker}"], 125),
    ([], 125),
])
def test_bad_input(pidns_cli: CLI, tmp_path: Path, args: list[str], status: int) -> None:
    marker = tmp_path / "marker"
    r = pidns_cli("run", *[a.replace("{marker}", str(marker)) for a in args])
    assert r.returncode == status
    assert r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("pidns: cannot ")
    assert "; hint: " in r.stderr
    assert not marker.exists()  # fail closed: the command never ran


@pytest.mark.parametrize("argv", [["frobnicate"], [], ["--state-dir", "/tmp"]])
def test_unknown_or_missing_command(pidns_cli: CLI, argv: list[str]) -> None:
    r = pidns_cli(*argv)
    assert r.returncode == 125
    assert r.stderr.startswith("pidns: cannot ")
    assert r.stderr.count("\n") == 1
    assert r.stdout == ""


def test_help_is_not_an_error(pidns_cli: CLI) -> None:
    r = pidns_cli("--help")
    assert r.returncode == 0
    assert "commands:" in r.stdout


# --- rootless ------------------------------------------------------------------------

def test_rootless_run(rootless: CLI) -> None:
    r = rootless("run", "--", "sh", "-c", "echo $$ $(id -u); ps -e -o pid= | wc -l")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "0", "3"]  # sh, ps, wc


def test_rootless_init_nest_and_errors(rootless: CLI) -> None:
    r = rootless("run", "--init", "--nest", "2", "--", "sh", "-c", "echo $$")
    assert (r.returncode, r.stdout.strip()) == (0, "2"), r.stderr
    r = rootless("run", "--", "no-such-command-xyz")
    assert r.returncode == 127
    assert r.stderr.startswith("pidns: cannot run")


# --- the Python API ------------------------------------------------------------------

def test_run_captures_and_feeds() -> None:
    done = pidns.run(["sh", "-c", "cat; echo err >&2"], input="hi\n", capture_output=True,
                     text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "hi\n", "err\n")
    with pytest.raises(subprocess.CalledProcessError):
        pidns.run(["false"], check=True)


def test_run_timeout_kills_the_namespace(tmp_path: Path) -> None:
    where = tmp_path / "ns"
    with pytest.raises(pidns.TimeoutExpired):
        pidns.run(["sh", "-c", f"readlink /proc/self/ns/pid > {where}; sleep 60 & sleep 60"],
                  timeout=2)
    ino = int(where.read_text().strip()[len("pid:["):-1])
    # (the namespace is gone; a new one could reuse the inode, so only fail on a
    # member that is one of ours: a sleep whose parent chain leads here)
    assert all(Path(f"/proc/{p}/comm").read_text().strip() != "sleep"
               or os.getpid() not in _ancestors(p) for p in procs_in_ns(ino))


def _ancestors(pid: int) -> list[int]:
    out = []
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            break
        out.append(pid)
    return out


def test_exec_failure_raises_like_subprocess() -> None:
    with pytest.raises(FileNotFoundError):
        pidns.run(["no-such-command-xyz"])
    with pytest.raises(PermissionError):
        pidns.run(["/etc/passwd"])
    with pytest.raises(pidns.PidnsError):
        pidns.run(["true"], nest=33)
    with pytest.raises(pidns.PidnsError) as info:
        pidns.run(["true"], cwd="/no/such/dir")
    assert "change directory" in str(info.value)


def test_sandbox_handle() -> None:
    with pidns.Sandbox(["sh", "-c", "read x; echo got $x"], stdin=ospawn.PIPE,
                       stdout=ospawn.PIPE, text=True) as box:
        assert box.poll() is None
        assert box.ns.level == own_level() + 1
        assert box.ns.parent == os.stat("/proc/self/ns/pid").st_ino
        out, _ = box.communicate("42\n")
        assert out == "got 42\n"
        assert box.returncode == 0
        with pytest.raises(pidns.NotFound):
            box.translate(12345)


def test_exec_sees_the_namespace() -> None:
    with pidns.Sandbox(["sleep", "60"]) as box:
        p = box.exec(["sh", "-c", "echo $$; ps -e -o pid= | wc -l"], stdout=ospawn.PIPE)
        out, _ = p.communicate()
        assert p.returncode == 0
        assert out.split() == [b"2", b"4"]  # sleep, sh, ps, wc
        with pytest.raises(FileNotFoundError):
            box.exec(["no-such-command-xyz"])


def test_thread_safe_from_many_threads() -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(15):
                assert pidns.run(["sh", "-c", f"exit {i}"]).returncode == i
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_fallbacks_without_ioctls_or_pidfd(monkeypatch: pytest.MonkeyPatch) -> None:
    # kernels before 6.11 (no translation ioctls) and before 5.3 (no pidfd)
    def enotty(*_: object) -> int:
        raise OSError(25, "Inappropriate ioctl for device")

    def enosys(*_: object) -> int:
        raise OSError(38, "Function not implemented")

    with pidns.Sandbox(["sleep", "60"]) as box:
        fast = (box.translate(1), box.inner_pid(box.pid))
        monkeypatch.setattr(ksys, "ns_pid_from_pidns", enotty)
        monkeypatch.setattr(ksys, "ns_pid_in_pidns", enotty)
        assert (box.translate(1), box.inner_pid(box.pid)) == fast == (box.pid, 1)
    monkeypatch.setattr(ksys, "pidfd_open", enosys)
    with pidns.Sandbox(["sleep", "60"]) as box:
        assert box._pidfd is None
        box.terminate()
        assert box.wait(5) == -signal.SIGTERM


def test_init_that_cannot_run_inside_the_rootfs_is_pidns_failure(rootfs: Path) -> None:
    # The fd-exec path used for pidns-init, given a dynamically linked program: inside a
    # busybox rootfs there is no loader, and that is pidns's failure (step 20), not the
    # user's command's (127).
    from pidns._kernel import _native

    fd = os.open("/bin/true", os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid, _, stage, err = _native.spawn(
            ["true"], ["/bin/true"], [], clone_flags=0x20020000, rootfs=str(rootfs),
            make_private=True, mount_proc=True, exec_fd=fd, pdeathsig=9)
    finally:
        os.close(fd)
    assert (stage, err) == (20, 2)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped by spawn: nothing left behind
