"""Engine resolvers against fakes: a docker API server on a unix socket, and fake
``podman``/``crictl`` programs on PATH answering from tests/fixtures/engines (synthetic).

Also the PID -> container name lookup over a fake /proc tree: one engine listing per
run at most, and none when no cgroup names a container.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import socketserver
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pidns.errors import NotFound, PidnsError, UsageError
from pidns.ops import engines, nsref
from pidns.procfs.cgroup import ContainerRef

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "engines"


def hid(word: str) -> str:
    return hashlib.sha256(word.encode()).hexdigest()


def load(name: str) -> object:
    return json.loads((FIX / name).read_text())


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("PIDNS_PODMAN", "PIDNS_PODMAN_ARGS", "PIDNS_CRICTL", "DOCKER_HOST",
                "PIDNS_RUNC_ROOT", "PIDNS_RUNC"):
        monkeypatch.delenv(var, raising=False)
    engines.clear_cache()
    yield
    engines.clear_cache()


# ---------------------------------------------------------------- a fake docker engine

class _Handler(http.server.BaseHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        answers = {
            "/containers/web/json": (200, load("docker-inspect-web.json")),
            f"/containers/{hid('docker-web')[:12]}/json": (200, load("docker-inspect-web.json")),
            "/containers/old/json": (200, load("docker-inspect-old.json")),
            "/containers/json?all=1": (200, load("docker-list.json")),
            "/containers/broken/json": (500, {"message": "driver failed"}),
        }
        code, body = answers.get(self.path, (404, {"message": "No such container: x"}))
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # unix sockets have no client address to log


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def docker_sock(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    path = str(tmp_path / "docker.sock")
    requests: list[str] = []
    handler = type("H", (_Handler,), {"requests": requests})
    server = _Server(path, handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield path, requests
    finally:
        server.shutdown()
        server.server_close()
        t.join(5)


def test_docker_resolve(docker_sock: tuple[str, list[str]]) -> None:
    path, requests = docker_sock
    c = engines.resolve_docker("web", sock=path)
    assert requests == ["/containers/web/json"]
    want = load("docker-inspect-web.json")
    assert isinstance(want, dict)
    assert c.engine == "docker"
    assert c.id == want["Id"]
    assert c.name == "web"  # docker's leading "/" dropped
    assert c.pid == want["State"]["Pid"]
    assert c.status == "running"
    assert c.started_at == want["State"]["StartedAt"]
    assert c.cmd == tuple(want["Config"]["Cmd"])
    assert c.env == tuple(want["Config"]["Env"])
    assert c.hostname == want["Config"]["Hostname"]
    assert c.rootfs == want["GraphDriver"]["Data"]["MergedDir"]
    view = c.inspect()
    assert view["Name"] == "web"
    assert view["State"]["Pid"] == want["State"]["Pid"]
    assert view["Config"]["Labels"] == want["Config"]["Labels"]  # engine fields kept
    assert c.raw["Name"] == "/web"  # raw is untouched


def test_docker_host_env_and_id_prefix(docker_sock: tuple[str, list[str]],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = docker_sock
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    assert engines.docker_socket() == path
    c = engines.resolve_foreign(f"docker:{hid('docker-web')[:12]}")
    assert c.id == hid("docker-web")


def test_docker_exited_has_no_pid(docker_sock: tuple[str, list[str]]) -> None:
    c = engines.resolve_docker("old", sock=docker_sock[0])
    assert c.status == "exited"
    assert c.pid is None
    assert c.inspect()["State"]["Pid"] == 0


def test_docker_unknown_name(docker_sock: tuple[str, list[str]]) -> None:
    path, requests = docker_sock
    with pytest.raises(NotFound) as info:
        engines.resolve_docker("no such/thing", sock=path)
    assert requests == ["/containers/no%20such%2Fthing/json"]
    msg = str(info.value)
    assert msg.startswith("cannot resolve 'docker:no such/thing': docker has no container")
    assert f"GET /containers/no%20such%2Fthing/json on {path}" in msg


def test_docker_server_error(docker_sock: tuple[str, list[str]]) -> None:
    with pytest.raises(PidnsError, match="answered 500: driver failed"):
        engines.resolve_docker("broken", sock=docker_sock[0])


def test_docker_not_running(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as info:
        engines.resolve_docker("web", sock=str(tmp_path / "none.sock"))
    assert "no docker engine answers on" in str(info.value)
    assert info.value.hint is not None
    assert "start dockerd" in info.value.hint


# ---------------------------------------------------------------- fake programs

def _fake_program(tmp_path: Path, name: str, body: str) -> tuple[Path, Path]:
    log = tmp_path / f"{name}.log"
    prog = tmp_path / "bin" / name
    prog.parent.mkdir(exist_ok=True)
    prog.write_text(f"#!{sys.executable}\nimport json, sys\nFIX = {str(FIX)!r}\n"
                    f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
                    + body)
    prog.chmod(prog.stat().st_mode | stat.S_IXUSR)
    return prog, log


def calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(ln) for ln in log.read_text().splitlines()]


PODMAN_BODY = """
args = sys.argv[1:]
while args and args[0].startswith("--"):   # global flags from PIDNS_PODMAN_ARGS
    args = args[2:]
web = json.load(open(FIX + "/docker-inspect-web.json"))
web["Name"] = "web"
if args[:2] == ["container", "inspect"]:
    if args[-1] in ("web", web["Id"][:12]):
        print(json.dumps([web]))
        sys.exit(0)
    print("[]")
    print("Error: inspecting object: no such container " + args[-1], file=sys.stderr)
    sys.exit(125)
if args[:2] == ["ps", "-a"]:
    print(json.dumps([{"Id": web["Id"], "Names": ["web"]}, {"Id": "f" * 64, "Names": ["x"]}]))
    sys.exit(0)
print("Error: unexpected " + " ".join(args), file=sys.stderr)
sys.exit(125)
"""


@pytest.fixture
def fake_podman(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    prog, log = _fake_program(tmp_path, "podman", PODMAN_BODY)
    monkeypatch.setenv("PIDNS_PODMAN", str(prog))
    return log


def test_podman_resolve_with_global_args(fake_podman: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIDNS_PODMAN_ARGS", "--runtime runc --cgroup-manager cgroupfs")
    c = engines.resolve_foreign("podman:web")
    assert c.name == "web"
    assert c.pid == 31337
    assert calls(fake_podman) == [["--runtime", "runc", "--cgroup-manager", "cgroupfs",
                                   "container", "inspect", "--format", "json", "web"]]


def test_podman_default_has_no_global_args(fake_podman: Path) -> None:
    engines.resolve_podman("web")
    assert calls(fake_podman) == [["container", "inspect", "--format", "json", "web"]]


def test_podman_unknown_name(fake_podman: Path) -> None:
    with pytest.raises(NotFound) as info:
        engines.resolve_podman("nope")
    assert "podman has no container 'nope' (tried `" in str(info.value)
    assert "container inspect --format json nope`" in str(info.value)


def test_podman_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIDNS_PODMAN", str(tmp_path / "no-podman"))
    with pytest.raises(NotFound) as info:
        engines.resolve_podman("web")
    assert "is not installed" in str(info.value)
    assert "apt-get install podman" in str(info.value)


def test_unknown_engine_and_empty_name() -> None:
    with pytest.raises(NotFound, match="ENGINE one of podman, docker, runc, k8s"):
        engines.resolve_foreign("lxc:web")
    with pytest.raises(NotFound, match="no container name"):
        engines.resolve_foreign("podman:")


def test_nsref_engine_forms_are_registered() -> None:
    for engine in engines.ENGINES:
        assert engine in nsref._ENGINES


def test_nsref_stopped_container_is_not_found(docker_sock: tuple[str, list[str]],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{docker_sock[0]}")
    with pytest.raises(NotFound, match="the container is exited, not running"):
        nsref.resolve("docker:old")


# ---------------------------------------------------------------- k8s through crictl

CRICTL_BODY = """
args = sys.argv[1:]
def out(name):
    print(open(FIX + "/" + name).read())
    sys.exit(0)
if args[0] == "pods":
    pods = json.load(open(FIX + "/crictl-pods.json"))
    ns, name = args[args.index("--namespace") + 1], args[args.index("--name") + 1]
    # crictl matches --name as a pattern: web also matches web2, as the real one does
    pods["items"] = [p for p in pods["items"] if p["metadata"]["namespace"] == ns
                     and name in p["metadata"]["name"]]
    print(json.dumps(pods))
    sys.exit(0)
if args[0] == "ps" and "--pod" in args:
    out("crictl-ps.json")
if args[0] == "ps":
    out("crictl-ps.json")
if args[0] == "inspect":
    info = json.load(open(FIX + "/crictl-inspect.json"))
    if args[1] != info["status"]["id"]:
        print("container not found", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(info))
    sys.exit(0)
sys.exit(2)
"""


@pytest.fixture
def fake_crictl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    prog, log = _fake_program(tmp_path, "crictl", CRICTL_BODY)
    monkeypatch.setenv("PATH", f"{prog.parent}:{os.environ['PATH']}")
    return log


def test_k8s_resolve(fake_crictl: Path) -> None:
    c = engines.resolve_foreign("k8s:default/web/nginx")
    info = load("crictl-inspect.json")
    assert isinstance(info, dict)
    assert c.engine == "k8s"
    assert c.id == hid("k8s-nginx")  # the running attempt, not the exited one
    assert c.name == "default/web/nginx"
    assert c.pid == info["info"]["pid"]
    assert c.status == "running"
    assert c.cmd == ("nginx", "-g", "daemon off;")
    assert c.hostname == "web"
    assert c.started_at == info["status"]["startedAt"]
    got = calls(fake_crictl)
    assert got[0] == ["pods", "--namespace", "default", "--name", "web", "-o", "json"]
    assert got[1] == ["ps", "-a", "--pod", hid("sandbox-web"), "-o", "json"]  # the ready one
    assert got[2] == ["inspect", hid("k8s-nginx")]
    view = c.inspect()
    assert view["State"]["Pid"] == info["info"]["pid"]
    assert view["Raw"] == info


def test_k8s_pod_with_several_containers_needs_a_name(fake_crictl: Path) -> None:
    with pytest.raises(NotFound, match=r"several containers \(nginx, sidecar\)"):
        engines.resolve_k8s("default/web")


def test_k8s_unknown_pod_and_container(fake_crictl: Path) -> None:
    with pytest.raises(NotFound, match="no pod 'nope' in namespace 'default'"):
        engines.resolve_k8s("default/nope")
    with pytest.raises(NotFound, match=r"no container 'db' \(it has: nginx, sidecar\)"):
        engines.resolve_k8s("default/web/db")


@pytest.mark.parametrize("ref", ["web", "a/b/c/d", "/web", "ns//c"])
def test_k8s_bad_reference(ref: str) -> None:
    with pytest.raises(NotFound, match="not NAMESPACE/POD"):
        engines.resolve_k8s(ref)


def test_k8s_crictl_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIDNS_CRICTL", str(tmp_path / "no-crictl"))
    with pytest.raises(NotFound) as info:
        engines.resolve_k8s("default/web")
    assert "install crictl" in str(info.value)


# ---------------------------------------------------------------- runc state files

def _runc_state(root: Path, cid: str, pid: int, start: int, bundle: Path | None) -> None:
    (root / cid).mkdir(parents=True)
    labels = [f"bundle={bundle}"] if bundle else []
    state = {"id": cid, "init_process_pid": pid, "init_process_start": start,
             "created": "2026-11-24T10:00:00Z",
             "config": {"rootfs": "/srv/rootfs", "hostname": "box", "labels": labels},
             "cgroup_paths": {"pids": f"/sys/fs/cgroup/pids/{cid}",
                              "": f"/sys/fs/cgroup/unified/{cid}"}}
    (root / cid / "state.json").write_text(json.dumps(state))


def _my_starttime() -> int:
    text = Path(f"/proc/{os.getpid()}/stat").read_text()
    return int(text[text.rindex(")") + 2:].split()[19])


def test_runc_state_file(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(
        {"process": {"args": ["sleep", "9"], "env": ["A=1"]}}))
    _runc_state(tmp_path / "root", "box", os.getpid(), _my_starttime(), bundle)
    c = engines.resolve_runc("box", root=str(tmp_path / "root"))
    assert (c.pid, c.status, c.cmd, c.env) == (os.getpid(), "running", ("sleep", "9"), ("A=1",))
    assert (c.hostname, c.rootfs) == ("box", "/srv/rootfs")
    assert c.inspect()["Config"]["Cmd"] == ["sleep", "9"]


def test_runc_pid_reused_means_stopped(tmp_path: Path) -> None:
    _runc_state(tmp_path / "root", "box", os.getpid(), _my_starttime() + 1, None)
    c = engines.resolve_runc("box", root=str(tmp_path / "root"))
    assert (c.pid, c.status) == (None, "stopped")


def test_runc_missing_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIDNS_RUNC", str(tmp_path / "no-runc"))
    with pytest.raises(NotFound) as info:
        engines.resolve_runc("box", root=str(tmp_path))
    assert f"no {tmp_path}/box/state.json, and " in str(info.value)
    with pytest.raises(NotFound, match="not a runc container ID"):
        engines.resolve_runc("../etc")


# ---------------------------------------------------------------- PID -> container name

def _proc(tmp_path: Path, cgroups: dict[int, str]) -> str:
    root = tmp_path / "proc"
    for pid, text in cgroups.items():
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "cgroup").write_text(text)
    return str(root)


def test_names_one_podman_listing_per_run(tmp_path: Path, fake_podman: Path) -> None:
    web = hid("docker-web")  # the fake podman's container
    proc = _proc(tmp_path, {
        10: f"0::/libpod_parent/libpod-{web}\n",
        11: f"0::/machine.slice/libpod-{web}.scope/container\n",
        12: f"0::/machine.slice/libpod-{'e' * 64}.scope\n",  # not in podman's list
        13: f"0::/machine.slice/libpod-conmon-{web}.scope\n",
        14: "0::/user.slice\n",
    })
    got = {pid: engines.container_name_for(pid, proc) for pid in (10, 11, 12, 13, 14, 99)}
    assert got == {10: "podman:web", 11: "podman:web", 12: f"podman:{'e' * 12}", 13: None,
                   14: None, 99: None}
    assert calls(fake_podman) == [["ps", "-a", "--format", "json"]]


def test_names_never_ask_an_engine_for_plain_processes(tmp_path: Path, fake_podman: Path,
                                                       fake_crictl: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIDNS_RUNC_ROOT", str(tmp_path / "no-runc-root"))
    proc = _proc(tmp_path, {1: "0::/init.scope\n", 2: "1:cpu:/\n0::/\n",
                            3: "0::/user.slice/user-1000.slice/session-3.scope\n",
                            4: "garbage\n"})
    assert [engines.container_name_for(p, proc) for p in (1, 2, 3, 4)] == [None] * 4
    assert calls(fake_podman) == []
    assert calls(fake_crictl) == []


def test_names_docker_k8s_runc(tmp_path: Path, docker_sock: tuple[str, list[str]],
                               fake_crictl: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{docker_sock[0]}")
    runc_root = tmp_path / "runc"
    monkeypatch.setenv("PIDNS_RUNC_ROOT", str(runc_root))
    _runc_state(runc_root, "mybox", 1, 1, None)
    uid_ = "8f2b5c3e_1d4a_4e6b_9c7d_0a1b2c3d4e5f"
    proc = _proc(tmp_path, {
        20: f"0::/system.slice/docker-{hid('docker-web')}.scope\n",
        21: f"4:memory:/docker/{hid('docker-web')}\n0::/\n",
        22: f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice"
            f"/cri-containerd-{hid('k8s-nginx')}.scope\n",
        23: "8:pids:/mybox\n0::/mybox\n",
        24: f"0::/system.slice/crio-{'c' * 64}.scope\n",
    })
    got = {pid: engines.container_name_for(pid, proc) for pid in (20, 21, 22, 23, 24)}
    assert got == {20: "docker:web", 21: "docker:web", 22: "k8s:default/web/nginx",
                   23: "runc:mybox", 24: f"crio:{'c' * 12}"}
    assert docker_sock[1] == ["/containers/json?all=1"]
    assert calls(fake_crictl) == [["ps", "-a", "-o", "json"]]
    assert engines.container_ref_for(22, proc) == ContainerRef(
        "k8s", hid("k8s-nginx"), "8f2b5c3e-1d4a-4e6b-9c7d-0a1b2c3d4e5f", "containerd")


def test_names_engine_unreachable_shows_short_id(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    proc = _proc(tmp_path, {5: f"0::/docker/{hid('docker-web')}\n"})
    assert engines.container_name_for(5, proc) == f"docker:{hid('docker-web')[:12]}"


def test_template_errors_are_usage_errors() -> None:
    # `pidns inspect --format` reports a bad field as a UsageError, exit 125
    from pidns.ops.template import render

    c = engines.ForeignContainer("runc", "x", "x", None, "stopped", None, (), (), None, None)
    with pytest.raises(UsageError, match=r"fields of \.State are"):
        render("{{.State.Nope}}", c.inspect())
