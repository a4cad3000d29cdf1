"""Other engines' containers on the real machine: podman and runc, started here.

Each test starts its own container (``pidns-test-<random>``) from a busybox rootfs built
by scripts/make-rootfs.sh, and removes it in teardown, checking that nothing is left.
podman runs as ``podman --runtime runc --cgroup-manager cgroupfs`` (no systemd here);
pidns is told the same through PIDNS_PODMAN_ARGS.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import MAKE_ROOTFS, PKG_DIR, procs_in_ns
from pidns.errors import NotFound
from pidns.ops import engines, nsref, template

pytestmark = pytest.mark.kernel

PODMAN_ARGS = os.environ.get("PIDNS_PODMAN_ARGS", "--runtime runc --cgroup-manager cgroupfs")
PODMAN = ["podman", *shlex.split(PODMAN_ARGS)]


def _need(tool: str, package: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"{tool} containers with --rootfs need root here; not root")
    if shutil.which(tool) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed on CI (apt-get install {package})")
        pytest.skip(f"{tool} is not installed (apt-get install {package})")


def sh(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check,
                          timeout=timeout, stdin=subprocess.DEVNULL)




@pytest.fixture
def pidns_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment for pidns (in-process and CLI) to reach podman here."""
    monkeypatch.setenv("PIDNS_PODMAN_ARGS", PODMAN_ARGS)
    engines.clear_cache()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PKG_DIR.parent)
    return env


@dataclass
class Podman:
    name: str
    pid: int  # podman's own answer: {{.State.Pid}}
    conmon_pid: int


@pytest.fixture
def podman_ctr(rootfs: Path, pidns_env: dict[str, str],
               reap_ns: Callable[[int], None]) -> Iterator[Podman]:
    _need("podman", "podman")
    name = f"pidns-test-{secrets.token_hex(4)}"
    ino = 0
    try:
        sh(*PODMAN, "run", "-d", "--name", name, "--network", "none",
           "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
           "--rootfs", str(rootfs), "sh", "-c", "sleep 600 & sleep 601", timeout=120)
        state = json.loads(sh(*PODMAN, "inspect", "--format", "{{json .State}}", name).stdout)
        pid = int(sh(*PODMAN, "inspect", "--format", "{{.State.Pid}}", name).stdout)
        assert pid == state["Pid"] > 0
        ino = os.stat(f"/proc/{pid}/ns/pid").st_ino
        reap_ns(ino)
        yield Podman(name, pid, int(state["ConmonPid"]))
    finally:
        sh(*PODMAN, "rm", "-f", "-t", "0", name, check=False, timeout=120)
        if ino:
            _wait_ns_empty(ino)
        left = sh(*PODMAN, "ps", "-a", "--format", "{{.Names}}").stdout.split()
        assert name not in left, f"podman container {name} left behind"


def podman_top_pairs(name: str) -> set[tuple[int, int]]:
    out = sh(*PODMAN, "top", name, "hpid", "pid").stdout.splitlines()
    assert out[0].split() == ["HPID", "PID"]
    return {(int(a), int(b)) for a, b in (ln.split() for ln in out[1:] if ln.strip())}


def _wait_for(cond: Callable[[], bool], what: str, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)




def test_make_rootfs_is_idempotent(rootfs: Path) -> None:
    # a second run over an existing root file system changes nothing and succeeds
    sh(str(MAKE_ROOTFS), str(rootfs))
    assert (rootfs / "bin" / "busybox").exists()


def _wait_ns_empty(ino: int) -> None:
    # After `rm -f`/`delete -f` the killed init is a zombie until its parent (the host's
    # PID 1 here) reaps it; give it a moment before reap_ns checks for leftovers.
    _wait_for(lambda: not procs_in_ns(ino), f"pid:[{ino}] to empty")


# ---------------------------------------------------------------- podman

def test_podman_resolver_agrees_with_podman_inspect(podman_ctr: Podman) -> None:
    c = engines.resolve_podman(podman_ctr.name)
    assert c.pid == podman_ctr.pid
    assert c.engine == "podman"
    assert c.name == podman_ctr.name
    assert c.status == "running"
    assert c.cmd == ("sh", "-c", "sleep 600 & sleep 601")
    full_id = sh(*PODMAN, "inspect", "--format", "{{.Id}}", podman_ctr.name).stdout.strip()
    assert c.id == full_id
    # an ID prefix works as podman takes it
    assert engines.resolve_podman(full_id[:12]).pid == podman_ctr.pid
    assert engines.resolve_foreign(f"podman:{podman_ctr.name}").id == full_id


def test_podman_nsref_is_the_containers_namespace(podman_ctr: Podman) -> None:
    with nsref.resolve(f"podman:{podman_ctr.name}") as ref:
        assert ref.pid == podman_ctr.pid
        assert ref.id.ino == os.stat(f"/proc/{podman_ctr.pid}/ns/pid").st_ino
        assert ref.engine == "podman"
        assert ref.container == podman_ctr.name
        assert nsref.container_of(ref.id) == ("podman", podman_ctr.name)


def test_top_agrees_with_podman_top(podman_ctr: Podman, pidns_env: dict[str, str],
                                    pidns_cli: Callable[..., subprocess.CompletedProcess[str]]
                                    ) -> None:
    # a process entered with exec: in the namespace, but not a child of PID 1
    sh(*PODMAN, "exec", "-d", podman_ctr.name, "sleep", "555")
    _wait_for(lambda: len(podman_top_pairs(podman_ctr.name)) >= 3, "3 processes")
    expected = podman_top_pairs(podman_ctr.name)
    done = pidns_cli("top", f"podman:{podman_ctr.name}", "-J", env=pidns_env)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["processes"]
    assert {(r["hpid"], r["pid"]) for r in rows} == expected
    by_pid = {r["pid"]: r for r in rows}
    assert by_pid[1]["hpid"] == podman_ctr.pid
    assert by_pid[1]["ppid"] == 0
    assert by_pid[1]["command"] == "sleep 601"
    (child,) = [r for r in rows if r["command"] == "sleep 600"]
    assert child["ppid"] == 1
    (entered,) = [r for r in rows if r["command"] == "sleep 555"]
    assert entered["ppid"] == 0  # its parent (runc/conmon) is outside the container
    assert all(r["user"] == "root" for r in rows)
    # the table form has the same PIDs
    table = pidns_cli("top", f"podman:{podman_ctr.name}", "-o", "hpid,pid", "-n", "-r",
                      env=pidns_env)
    assert table.returncode == 0, table.stderr
    assert {tuple(map(int, ln.split())) for ln in table.stdout.splitlines()} == expected


def test_container_name_for_podman(podman_ctr: Podman) -> None:
    for hpid, _ in podman_top_pairs(podman_ctr.name):
        assert engines.container_name_for(hpid) == f"podman:{podman_ctr.name}"
    assert engines.container_name_for(podman_ctr.conmon_pid) is None  # the monitor
    assert engines.container_name_for(os.getpid()) is None


def test_inspect_template_through_the_api(podman_ctr: Podman) -> None:
    c = engines.resolve_foreign(f"podman:{podman_ctr.name}")
    want = sh(*PODMAN, "inspect", "--format", "{{.State.Pid}}", podman_ctr.name).stdout
    assert template.render("{{.State.Pid}}", c.inspect()) == want.strip()
    for fmt in ("{{.Config.Cmd}}", "{{.Name}}", "{{.Id}}", "{{.State.Status}}",
                "{{.State.Running}}", "{{json .Config.Cmd}}", "pid={{ .State.Pid }}"):
        want = sh(*PODMAN, "inspect", "--format", fmt, podman_ctr.name).stdout
        assert template.render(fmt, c.inspect()) == want.rstrip("\n"), fmt


def test_podman_unknown_name_says_what_was_tried(pidns_env: dict[str, str],
                                                 pidns_cli: Callable[..., subprocess.
                                                                     CompletedProcess[str]]
                                                 ) -> None:
    _need("podman", "podman")
    name = f"pidns-test-absent-{secrets.token_hex(4)}"
    done = pidns_cli("top", f"podman:{name}", env=pidns_env)
    assert done.returncode == 1
    assert done.stderr.startswith(f"pidns: cannot resolve 'podman:{name}': ")
    assert "podman" in done.stderr
    assert "container inspect" in done.stderr
    assert done.stderr.count("\n") == 1


# ---------------------------------------------------------------- runc

@dataclass
class Runc:
    id: str
    pid: int


@pytest.fixture
def runc_ctr(rootfs: Path, tmp_path: Path, reap_ns: Callable[[int], None]) -> Iterator[Runc]:
    _need("runc", "runc")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    sh("runc", "spec", "--bundle", str(bundle))
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"].pop("rlimits", None)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "sleep 600 & sleep 601"]
    cfg["root"] = {"path": str(rootfs), "readonly": False}
    cfg["hostname"] = "pidns-runc"
    (bundle / "config.json").write_text(json.dumps(cfg))
    cid = f"pidns-test-{secrets.token_hex(4)}"
    pid_file = tmp_path / "pid"
    ino = 0
    try:
        subprocess.run(["runc", "run", "-d", "--bundle", str(bundle), "--pid-file",
                        str(pid_file), cid], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       timeout=60)
        pid = int(pid_file.read_text())
        ino = os.stat(f"/proc/{pid}/ns/pid").st_ino
        reap_ns(ino)
        yield Runc(cid, pid)
    finally:
        sh("runc", "delete", "-f", cid, check=False)
        if ino:
            _wait_ns_empty(ino)
        assert sh("runc", "state", cid, check=False).returncode != 0, f"runc {cid} left"
        assert not Path(f"/run/runc/{cid}").exists()


def test_runc_resolver_agrees_with_runc(runc_ctr: Runc) -> None:
    c = engines.resolve_runc(runc_ctr.id)
    assert c.pid == runc_ctr.pid
    state = json.loads(sh("runc", "state", runc_ctr.id).stdout)
    assert c.pid == state["pid"]
    assert c.status == state["status"] == "running"
    assert c.cmd == ("sh", "-c", "sleep 600 & sleep 601")
    assert c.hostname == "pidns-runc"
    assert c.rootfs == state["rootfs"]
    with nsref.resolve(f"runc:{runc_ctr.id}") as ref:
        assert ref.id.ino == os.stat(f"/proc/{runc_ctr.pid}/ns/pid").st_ino


def test_runc_top_and_names(runc_ctr: Runc, pidns_env: dict[str, str],
                            pidns_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    _wait_for(lambda: len(json.loads(sh("runc", "ps", "--format", "json",
                                         runc_ctr.id).stdout)) >= 2, "2 processes")
    host_pids = set(json.loads(sh("runc", "ps", "--format", "json", runc_ctr.id).stdout))
    done = pidns_cli("top", f"runc:{runc_ctr.id}", "-J", env=pidns_env)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["processes"]
    assert {r["hpid"] for r in rows} == host_pids
    for r in rows:
        status = Path(f"/proc/{r['hpid']}/status").read_text()
        nspid = next(ln for ln in status.splitlines() if ln.startswith("NSpid:")).split()[1:]
        assert r["pid"] == int(nspid[-1])
        assert engines.container_name_for(r["hpid"]) == f"runc:{runc_ctr.id}"


def test_runc_pid_reuse_guard(runc_ctr: Runc, tmp_path: Path) -> None:
    # A copy of the state whose start time does not match the live process: not running.
    root = tmp_path / "runc-root"
    (root / runc_ctr.id).mkdir(parents=True)
    state = json.loads(Path(f"/run/runc/{runc_ctr.id}/state.json").read_text())
    state["init_process_start"] += 1
    (root / runc_ctr.id / "state.json").write_text(json.dumps(state))
    c = engines.resolve_runc(runc_ctr.id, root=str(root))
    assert c.pid is None
    assert c.status == "stopped"
    assert engines.resolve_runc(runc_ctr.id).pid == runc_ctr.pid


def test_runc_unknown_id(tmp_path: Path) -> None:
    _need("runc", "runc")
    cid = f"pidns-test-absent-{secrets.token_hex(4)}"
    with pytest.raises(NotFound) as info:
        engines.resolve_runc(cid)
    msg = str(info.value)
    assert f"/run/runc/{cid}/state.json" in msg
    assert "runc --root /run/runc state" in msg

