"""Other engines' containers: podman, docker, runc and Kubernetes (CRI), both ways.

Forward, ``ENGINE:NAME`` -> :class:`ForeignContainer` (host PID of its PID 1 and what
``inspect`` shows), through each engine's own interface:

=========  ==============================================================================
podman     ``podman container inspect NAME`` (JSON). ``$PIDNS_PODMAN`` names the program
           (default ``podman``); ``$PIDNS_PODMAN_ARGS`` adds global flags before the
           subcommand, split as a shell would, e.g.
           ``PIDNS_PODMAN_ARGS="--runtime runc --cgroup-manager cgroupfs"`` where podman
           only works with those (no systemd, as on this project's CI machines).
docker     ``GET /containers/NAME/json`` on the engine's API socket (HTTP over AF_UNIX),
           ``$DOCKER_HOST`` when it is ``unix://PATH``, else ``/var/run/docker.sock``.
runc       ``ROOT/ID/state.json`` (``init_process_pid``, guarded against PID reuse by
           ``init_process_start``); ROOT is ``$PIDNS_RUNC_ROOT``, else ``/run/runc`` for
           root and ``$XDG_RUNTIME_DIR/runc`` otherwise. Without a state file,
           ``runc state ID``. The command line comes from the bundle's config.json.
k8s        ``k8s:NAMESPACE/POD[/CONTAINER]`` through ``crictl`` (``$PIDNS_CRICTL``):
           ``crictl pods --namespace NS --name POD -o json``, ``crictl ps -a --pod ID -o
           json``, ``crictl inspect ID`` (``info.pid``).
=========  ==============================================================================

Backward, host PID -> ``"podman:NAME"`` (:func:`container_name_for`), from
``/proc/PID/cgroup`` (:mod:`pidns.procfs.cgroup`). The ID -> name tables are read at
most once per process run and engine (one ``podman ps -a``, one docker API call, one
``crictl ps -a``), and only when some cgroup names a container of that engine.

Importing this module registers the ``podman:``, ``docker:``, ``runc:`` and ``k8s:``
NSREF forms with :mod:`pidns.ops.nsref`.

PIDs here are in the caller's view (pidns runs on the host; the engines report host
PIDs).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pidns.errors import NoSuchProcess, NotFound, ParseError, PidnsError
from pidns.ops import nsref
from pidns.procfs.cgroup import ContainerRef, container_from_cgroup, parse_cgroup
from pidns.procfs.model import NsId
from pidns.procfs.reader import ProcFS

# json, shlex, socket, subprocess and urllib are imported inside the functions that talk
# to an engine: `pidns ls`/`ps` import this module for the CONTAINER column, and for a
# host with no container they must not pay ~10 ms of imports.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

DOCKER_SOCK: Final = "/var/run/docker.sock"
RUNC_ROOT: Final = "/run/runc"
CLI_TIMEOUT: Final = 30.0
ENGINES: Final = ("podman", "docker", "runc", "k8s")

JSON = dict[str, Any]


@dataclass(frozen=True)
class ForeignContainer:
    """Another engine's container, as its engine reports it.

    ``pid`` is the host PID (caller's view) of the container's PID 1, None when it is
    not running. ``status`` is the engine's word (``running``, ``exited``, ``created``,
    ``stopped``, ...). ``started_at`` is the engine's timestamp text. ``raw`` is the
    engine's own JSON, unchanged.
    """

    engine: str
    id: str
    name: str
    pid: int | None
    status: str
    started_at: str | None
    cmd: tuple[str, ...]
    env: tuple[str, ...]
    hostname: str | None
    rootfs: str | None
    raw: JSON = field(default_factory=dict, compare=False, repr=False)

    @property
    def ref(self) -> str:
        """The NSREF naming it: ``podman:NAME``, ``k8s:NS/POD/CONTAINER``, ..."""
        return f"{self.engine}:{self.name}"

    def inspect(self) -> JSON:
        """A docker-shaped inspect object (``Id``, ``Name``, ``State.Pid``, ``Config.Cmd``).

        For podman and docker it is the engine's own JSON (so every field users know
        works in ``--format``), with ``Name`` without docker's leading ``/``; for runc
        and k8s the common fields are built and the engine's JSON is under ``Raw``.
        """
        import json

        state = {"Status": self.status, "Running": self.status == "running",
                 "Pid": self.pid or 0, "StartedAt": self.started_at or ""}
        config = {"Cmd": list(self.cmd), "Env": list(self.env),
                  "Hostname": self.hostname or "", "Rootfs": self.rootfs or ""}
        if self.engine in ("podman", "docker"):
            out = json.loads(json.dumps(self.raw))  # a deep copy the caller may change
            out["Name"] = self.name
            out.setdefault("State", {})
            for k, v in state.items():
                out["State"].setdefault(k, v)
            out.setdefault("Config", {})
            for k, v in config.items():
                out["Config"].setdefault(k, v)
            out["Engine"] = self.engine
            return out  # type: ignore[no-any-return]
        return {"Id": self.id, "Name": self.name, "Engine": self.engine, "State": state,
                "Config": config, "Raw": self.raw}


# ------------------------------------------------------------------ running a CLI

def _program(env_name: str, default: str, args_env: str | None = None) -> list[str]:
    import shlex

    argv = shlex.split(os.environ.get(env_name) or default)
    if args_env is not None:
        argv += shlex.split(os.environ.get(args_env, ""))
    return argv


def podman_argv() -> list[str]:
    """``$PIDNS_PODMAN`` (default ``podman``) followed by ``$PIDNS_PODMAN_ARGS``."""
    return _program("PIDNS_PODMAN", "podman", "PIDNS_PODMAN_ARGS")


def _run(engine: str, argv: Sequence[str], action: str, *,
         missing_hint: str) -> subprocess.CompletedProcess[str]:
    """Run an engine CLI; a missing program is NotFound with ``missing_hint``."""
    import subprocess

    try:
        return subprocess.run(list(argv), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=CLI_TIMEOUT, check=False)
    except FileNotFoundError as exc:
        raise NotFound(action, f"{argv[0]} is not installed (no {engine} here)",
                       errnum=errno.ENOENT, hint=missing_hint) from exc
    except PermissionError as exc:
        raise NotFound(action, f"{argv[0]} cannot be run: {exc.strerror}",
                       errnum=exc.errno, hint=missing_hint) from exc
    except subprocess.TimeoutExpired as exc:
        raise PidnsError(action, f"{argv[0]} did not answer in {CLI_TIMEOUT:g} s",
                         hint=f"is the {engine} service healthy?") from exc


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def _loads(text: str, action: str, what: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError as exc:
        raise ParseError(action, f"{what} is not JSON: {text[:60]!r}",
                         hint="check the engine's version") from exc


def _int_or_none(v: object) -> int | None:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        return None
    return v


def _strs(v: object) -> tuple[str, ...]:
    if isinstance(v, str):
        return (v,) if v else ()
    if isinstance(v, list):
        return tuple(str(x) for x in v)
    return ()


def _obj(v: object) -> JSON:
    return v if isinstance(v, dict) else {}


def _get(d: object, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


# ------------------------------------------------------------------ podman

def _from_docker_json(engine: str, obj: JSON) -> ForeignContainer:
    """Podman's and docker's inspect JSON share docker's field names."""
    state = _obj(obj.get("State"))
    config = _obj(obj.get("Config"))
    status = state.get("Status") or ("running" if state.get("Running") else "unknown")
    cmd = _strs(config.get("Cmd"))
    if not cmd:
        cmd = _strs(obj.get("Path")) + _strs(obj.get("Args"))
    rootfs = obj.get("Rootfs") or _get(obj, "GraphDriver", "Data", "MergedDir")
    return ForeignContainer(
        engine=engine, id=str(obj.get("Id", "")), name=str(obj.get("Name", "")).lstrip("/"),
        pid=_int_or_none(state.get("Pid")) if status == "running" else None,
        status=str(status), started_at=state.get("StartedAt") or None, cmd=cmd,
        env=_strs(config.get("Env")), hostname=config.get("Hostname") or None,
        rootfs=str(rootfs) if rootfs else None, raw=obj,
    )


def resolve_podman(name: str) -> ForeignContainer:
    """``podman:NAME`` (a name or an ID prefix, as podman takes them).

    Raises:
        NotFound: podman is not installed, or has no such container.
    """
    import shlex

    action = f"resolve 'podman:{name}'"
    argv = [*podman_argv(), "container", "inspect", "--format", "json", name]
    done = _run("podman", argv, action,
                missing_hint="install podman (apt-get install podman), or set PIDNS_PODMAN")
    if done.returncode != 0:
        msg = _first_line(done.stderr)
        if "no such" in msg.lower():
            raise NotFound(action, f"podman has no container {name!r} "
                           f"(tried `{shlex.join(argv)}`)",
                           hint="list them with `podman ps -a`")
        raise NotFound(action, f"`{shlex.join(argv)}` failed: {msg}",
                       hint="if podman needs global flags here, set PIDNS_PODMAN_ARGS "
                       "(e.g. '--runtime runc --cgroup-manager cgroupfs')")
    got = _loads(done.stdout, action, "podman's answer")
    if isinstance(got, list) and got and isinstance(got[0], dict):
        return _from_docker_json("podman", got[0])
    raise NotFound(action, f"podman has no container {name!r} (tried `{shlex.join(argv)}`)",
                   hint="list them with `podman ps -a`")


def _podman_names() -> dict[str, str]:
    argv = [*podman_argv(), "ps", "-a", "--format", "json"]
    done = _run("podman", argv, "list podman containers", missing_hint="install podman")
    if done.returncode != 0:
        return {}
    got = _loads(done.stdout or "[]", "list podman containers", "podman's answer")
    out: dict[str, str] = {}
    for c in got if isinstance(got, list) else []:
        names = _strs(_get(c, "Names"))
        if isinstance(c, dict) and c.get("Id") and names:
            out[str(c["Id"])] = names[0]
    return out


# ------------------------------------------------------------------ docker (API socket)

def docker_socket() -> str:
    """The docker API socket: ``$DOCKER_HOST`` if ``unix://PATH``, else the default."""
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://"):]
    return DOCKER_SOCK


def _unix_connection(path: str, timeout: float = CLI_TIMEOUT) -> Any:
    """An ``http.client.HTTPConnection`` over an AF_UNIX stream socket (the engine API).

    http.client is imported here, not at module level: it costs more to import than
    the rest of this module, and only ``docker:`` needs it.
    """
    import http.client
    import socket

    class UnixHTTPConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(path)
            except OSError:
                sock.close()
                raise
            self.sock = sock

    return UnixHTTPConnection("localhost", timeout=timeout)


def docker_get(path: str, *, action: str, sock: str | None = None) -> tuple[int, Any]:
    """``GET path`` on the docker API socket: (HTTP status, decoded JSON or None).

    Raises:
        NotFound: no socket (docker not installed or not running).
        PermissionDenied-like PidnsError: the socket refuses us.
    """
    import http.client
    import json

    where = sock or docker_socket()
    conn = _unix_connection(where)
    try:
        conn.request("GET", path, headers={"Accept": "application/json"})
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise NotFound(action, f"no docker engine answers on {where} ({exc.strerror})",
                       errnum=exc.errno,
                       hint="start dockerd, or set DOCKER_HOST=unix:///path/to/docker.sock"
                       ) from exc
    except PermissionError as exc:
        raise NotFound(action, f"cannot connect to {where}: {exc.strerror}",
                       errnum=exc.errno, hint="run as root or as a member of the docker group"
                       ) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise PidnsError(action, f"the docker API on {where} failed: {exc}",
                         hint="is dockerd healthy?") from exc
    finally:
        conn.close()
    data = None
    if body.strip():
        try:
            data = json.loads(body)
        except ValueError:
            data = {"message": body.strip()[:200]}
    return resp.status, data


def resolve_docker(name: str, *, sock: str | None = None) -> ForeignContainer:
    """``docker:NAME`` (a name or ID prefix) through the engine API.

    Raises:
        NotFound: no engine answers, or it has no such container.
    """
    import urllib.parse

    action = f"resolve 'docker:{name}'"
    path = f"/containers/{urllib.parse.quote(name, safe='')}/json"
    status, data = docker_get(path, action=action, sock=sock)
    if status == 404:
        raise NotFound(action, f"docker has no container {name!r} "
                       f"(tried GET {path} on {sock or docker_socket()})",
                       hint="list them with `docker ps -a`")
    if status != 200 or not isinstance(data, dict):
        msg = data.get("message") if isinstance(data, dict) else None
        raise PidnsError(action, f"the docker API answered {status}: {msg or 'no message'}",
                         hint="is dockerd healthy?")
    return _from_docker_json("docker", data)


def _docker_names() -> dict[str, str]:
    status, data = docker_get("/containers/json?all=1", action="list docker containers")
    out: dict[str, str] = {}
    if status != 200 or not isinstance(data, list):
        return out
    for c in data:
        names = _strs(_get(c, "Names"))
        if isinstance(c, dict) and c.get("Id") and names:
            out[str(c["Id"])] = names[0].lstrip("/")
    return out


# ------------------------------------------------------------------ runc

def runc_root() -> str:
    """runc's state directory: ``$PIDNS_RUNC_ROOT``, ``/run/runc`` (root) or rootless."""
    if env := os.environ.get("PIDNS_RUNC_ROOT"):
        return env
    if os.geteuid() != 0 and (xdg := os.environ.get("XDG_RUNTIME_DIR")):
        return f"{xdg}/runc"
    return RUNC_ROOT


def _starttime(procfs_root: str, pid: int) -> int | None:
    try:
        return ProcFS(procfs_root).read_stat(pid).starttime
    except PidnsError:
        return None


def _read_json_file(path: str, action: str) -> Any:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return _loads(text, action, path)


def _bundle_config(labels: object) -> JSON:
    # libcontainer keeps "bundle=/path" among its labels; the process args live there.
    for label in labels if isinstance(labels, list) else []:
        if isinstance(label, str) and label.startswith("bundle="):
            try:
                got = _read_json_file(f"{label[7:]}/config.json", "read the bundle")
            except (OSError, PidnsError):
                return {}
            return got if isinstance(got, dict) else {}
    return {}


def _runc_from_state(cid: str, state: JSON, root: str, procfs_root: str) -> ForeignContainer:
    config = _obj(state.get("config"))
    pid = _int_or_none(state.get("init_process_pid"))
    start = state.get("init_process_start")
    status = "stopped"
    if pid is not None:
        now = _starttime(procfs_root, pid)
        if now is None or (isinstance(start, int) and now != start):
            pid = None  # gone, or the PID was reused by another process
        elif os.path.exists(f"{root}/{cid}/exec.fifo"):
            status = "created"  # `runc create`d, not started yet
        else:
            status = "running"
    bundle = _bundle_config(config.get("labels"))
    process = _obj(bundle.get("process"))
    return ForeignContainer(
        engine="runc", id=cid, name=cid, pid=pid, status=status,
        started_at=state.get("created") or None, cmd=_strs(process.get("args")),
        env=_strs(process.get("env")), hostname=config.get("hostname") or None,
        rootfs=config.get("rootfs") or None, raw=state,
    )


def resolve_runc(cid: str, *, root: str | None = None,
                 procfs_root: str = "/proc") -> ForeignContainer:
    """``runc:ID``: from runc's state.json, else ``runc state ID``.

    Raises:
        NotFound: no state for that ID, and runc itself does not know it (or is missing).
    """
    import shlex

    action = f"resolve 'runc:{cid}'"
    root = root or runc_root()
    if "/" in cid or cid in (".", ".."):
        raise NotFound(action, f"{cid!r} is not a runc container ID", hint="see `runc list`")
    path = f"{root}/{cid}/state.json"
    try:
        state = _read_json_file(path, action)
    except FileNotFoundError:
        state = None
    except OSError as exc:
        raise NotFound(action, f"cannot read {path}: {exc.strerror}", errnum=exc.errno,
                       hint="run as root, or set PIDNS_RUNC_ROOT to runc's --root") from exc
    if isinstance(state, dict):
        return _runc_from_state(cid, state, root, procfs_root)
    argv = [*_program("PIDNS_RUNC", "runc"), "--root", root, "state", cid]
    try:
        done = _run("runc", argv, action, missing_hint="install runc (apt-get install runc)")
    except NotFound as exc:
        raise NotFound(action, f"no {path}, and {exc.reason}", hint=exc.hint) from exc
    if done.returncode != 0:
        raise NotFound(action, f"runc has no container {cid!r} (tried {path} and "
                       f"`{shlex.join(argv)}`: {_first_line(done.stderr)})",
                       hint="list them with `runc list`; set PIDNS_RUNC_ROOT for another "
                       "--root")
    got = _loads(done.stdout, action, "runc's answer")
    if not isinstance(got, dict):
        raise ParseError(action, "`runc state` did not print an object")
    pid = _int_or_none(got.get("pid"))
    status = str(got.get("status", "unknown"))
    return ForeignContainer(
        engine="runc", id=cid, name=cid, pid=pid if status in ("running", "created") else None,
        status=status, started_at=got.get("created") or None, cmd=(), env=(),
        hostname=None, rootfs=got.get("rootfs") or None, raw=got,
    )


def _runc_cgroups(root: str) -> dict[str, set[str]]:
    """runc container ID -> the cgroup directories of its state.json."""
    out: dict[str, set[str]] = {}
    try:
        ids = os.listdir(root)
    except OSError:
        return out
    for cid in ids:
        try:
            state = _read_json_file(f"{root}/{cid}/state.json", "read runc state")
        except (OSError, PidnsError):
            continue
        paths = state.get("cgroup_paths") if isinstance(state, dict) else None
        if isinstance(paths, dict):
            out[cid] = {p for p in paths.values() if isinstance(p, str) and p}
    return out


# ------------------------------------------------------------------ k8s (crictl)

def _crictl(args: Sequence[str], action: str) -> Any:
    import shlex

    argv = [*_program("PIDNS_CRICTL", "crictl"), *args]
    done = _run("k8s", argv, action,
                missing_hint="install crictl (cri-tools) and point it at the CRI socket "
                "(/etc/crictl.yaml or CONTAINER_RUNTIME_ENDPOINT)")
    if done.returncode != 0:
        raise NotFound(action, f"`{shlex.join(argv)}` failed: {_first_line(done.stderr)}",
                       hint="is the CRI runtime (containerd, CRI-O) running, and crictl "
                       "configured for it?")
    return _loads(done.stdout, action, "crictl's answer")


def _pick_pod(items: list[Any], ns: str, pod: str) -> JSON | None:
    exact = [p for p in items if isinstance(p, dict)
             and _get(p, "metadata", "name") == pod and _get(p, "metadata", "namespace") == ns]
    if not exact:
        return None
    # The ready sandbox first, then the newest attempt.
    exact.sort(key=lambda p: (p.get("state") == "SANDBOX_READY",
                              _get(p, "metadata", "attempt") or 0, p.get("createdAt") or ""))
    return exact[-1]


def _pick_container(items: list[Any], want: str | None, action: str) -> JSON:
    conts = [c for c in items if isinstance(c, dict)]
    if want is not None:
        conts = [c for c in conts if _get(c, "metadata", "name") == want]
    names = sorted({str(_get(c, "metadata", "name")) for c in items if isinstance(c, dict)})
    if not conts:
        raise NotFound(action, f"the pod has no container {want!r} (it has: "
                       f"{', '.join(names) or 'none'})", hint="k8s:NAMESPACE/POD/CONTAINER")
    if want is None and len(names) > 1:
        raise NotFound(action, f"the pod has several containers ({', '.join(names)})",
                       hint="name one: k8s:NAMESPACE/POD/CONTAINER")
    conts.sort(key=lambda c: (c.get("state") == "CONTAINER_RUNNING",
                              _get(c, "metadata", "attempt") or 0, c.get("createdAt") or 0))
    return conts[-1]


_CRI_STATES: Final = {"CONTAINER_RUNNING": "running", "CONTAINER_EXITED": "exited",
                      "CONTAINER_CREATED": "created", "CONTAINER_UNKNOWN": "unknown"}


def resolve_k8s(ref: str) -> ForeignContainer:
    """``k8s:NAMESPACE/POD[/CONTAINER]`` through crictl.

    Raises:
        NotFound: crictl missing or failing, no such pod or container, or a pod with
            several containers and none named.
    """
    action = f"resolve 'k8s:{ref}'"
    parts = ref.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise NotFound(action, "not NAMESPACE/POD or NAMESPACE/POD/CONTAINER",
                       hint="e.g. k8s:default/web or k8s:kube-system/coredns-abc/coredns")
    ns, pod = parts[0], parts[1]
    want = parts[2] if len(parts) == 3 else None
    pods = _crictl(["pods", "--namespace", ns, "--name", pod, "-o", "json"], action)
    sandbox = _pick_pod(_get(pods, "items") or [], ns, pod)
    if sandbox is None:
        raise NotFound(action, f"no pod {pod!r} in namespace {ns!r} "
                       f"(tried `crictl pods --namespace {ns} --name {pod}`)",
                       hint="list them with `crictl pods`")
    conts = _crictl(["ps", "-a", "--pod", str(sandbox.get("id")), "-o", "json"], action)
    cont = _pick_container(_get(conts, "containers") or [], want, action)
    cid = str(cont.get("id"))
    info = _crictl(["inspect", cid], action)
    cname = str(_get(cont, "metadata", "name"))
    state = _get(info, "status", "state") or cont.get("state")
    status = _CRI_STATES.get(str(state), str(state).lower())
    spec = _get(info, "info", "runtimeSpec") or _get(info, "info", "config") or {}
    started = _get(info, "status", "startedAt")
    return ForeignContainer(
        engine="k8s", id=cid, name=f"{ns}/{pod}/{cname}",
        pid=_int_or_none(_get(info, "info", "pid")) if status == "running" else None,
        status=status, started_at=str(started) if started else None,
        cmd=_strs(_get(spec, "process", "args")), env=_strs(_get(spec, "process", "env")),
        hostname=_get(spec, "hostname") or None, rootfs=_get(spec, "root", "path") or None,
        raw=info if isinstance(info, dict) else {},
    )


def _k8s_names() -> dict[str, str]:
    got = _crictl(["ps", "-a", "-o", "json"], "list CRI containers")
    out: dict[str, str] = {}
    for c in _get(got, "containers") or []:
        labels = _get(c, "labels") or {}
        ns = labels.get("io.kubernetes.pod.namespace")
        pod = labels.get("io.kubernetes.pod.name")
        name = labels.get("io.kubernetes.container.name") or _get(c, "metadata", "name")
        if isinstance(c, dict) and c.get("id") and ns and pod and name:
            out[str(c["id"])] = f"{ns}/{pod}/{name}"
    return out


# ------------------------------------------------------------------ the forward API

_RESOLVERS: Final[dict[str, Callable[[str], ForeignContainer]]] = {
    "podman": resolve_podman,
    "docker": resolve_docker,
    "runc": resolve_runc,
    "k8s": resolve_k8s,
}


def resolve_foreign(ref: str) -> ForeignContainer:
    """``ENGINE:NAME`` -> the container, as its engine reports it.

    Raises:
        NotFound: unknown engine, engine not installed/running, or no such container;
            the message says what was tried.
    """
    engine, sep, name = ref.partition(":")
    fn = _RESOLVERS.get(engine.lower())
    if not sep or fn is None:
        raise NotFound(f"resolve {ref!r}", f"not ENGINE:NAME with ENGINE one of "
                       f"{', '.join(ENGINES)}", hint="e.g. podman:web, runc:ID, k8s:ns/pod")
    if not name:
        raise NotFound(f"resolve {ref!r}", "no container name after the engine",
                       hint=f"e.g. {engine}:NAME")
    return fn(name)


def _nsref_for(engine: str) -> Callable[[str], nsref.NsRef]:
    def resolve(rest: str) -> nsref.NsRef:
        spec = f"{engine}:{rest}"
        c = _RESOLVERS[engine](rest)
        if c.pid is None:
            raise NotFound(f"resolve {spec!r}", f"the container is {c.status}, not running: "
                           "it has no PID namespace", hint=f"start it with {engine}")
        return nsref.from_pid(c.pid, spec=spec, kind="engine", container=c.name,
                              engine=engine)

    return resolve


# ------------------------------------------------------------------ PID -> container

_names: dict[str, dict[str, str]] = {}  # engine -> {full ID: name}; once per process run
_runc_cache: dict[str, dict[str, set[str]]] = {}  # runc root -> {ID: cgroup dirs}

_NAME_TABLES: Final[dict[str, Callable[[], dict[str, str]]]] = {
    "podman": _podman_names,
    "docker": _docker_names,
    "k8s": _k8s_names,
}


def clear_cache() -> None:
    """Forget the ID -> name tables (a long-running caller refreshing its view)."""
    _names.clear()
    _runc_cache.clear()


def _name_table(engine: str) -> dict[str, str]:
    if engine not in _names:
        try:
            _names[engine] = _NAME_TABLES[engine]()
        except PidnsError:
            _names[engine] = {}  # engine not reachable: show the short ID instead
    return _names[engine]


def read_cgroup(pid: int, procfs_root: str = "/proc") -> str:
    """The text of ``/proc/PID/cgroup``.

    Raises:
        NoSuchProcess: the process is gone. PidnsError: it cannot be read.
    """
    path = f"{procfs_root.rstrip('/')}/{pid}/cgroup"
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError) as exc:
        raise NoSuchProcess(f"read {path}", "the process has exited", pid=pid,
                            errnum=exc.errno) from exc
    except OSError as exc:
        raise PidnsError(f"read {path}", exc.strerror or str(exc), pid=pid,
                         errnum=exc.errno) from exc


def container_ref_for(pid: int, procfs_root: str = "/proc") -> ContainerRef | None:
    """The container process ``pid`` is in, from its cgroup (runc by its state dir).

    Returns None when no cgroup names a container, or the process cannot be read.
    """
    try:
        text = read_cgroup(pid, procfs_root)
        ref = container_from_cgroup(text)
        if ref is not None:
            return ref
        lines = parse_cgroup(text)
    except PidnsError:
        return None
    paths = {ln.path for ln in lines if ln.path != "/"}
    if not paths:
        return None
    root = runc_root()
    if root not in _runc_cache:
        _runc_cache[root] = _runc_cgroups(root)
    for cid, dirs in _runc_cache[root].items():
        if any(d.endswith(p) for d in dirs for p in paths):
            return ContainerRef("runc", cid)
    return None


def container_name_for(pid: int, procfs_root: str = "/proc") -> str | None:
    """``"podman:NAME"``, ``"docker:NAME"``, ``"runc:ID"``, ``"k8s:NS/POD/CONTAINER"``, ...
    for the container that host process ``pid`` is in, else None.

    The name comes from one listing per engine and process run (cached); when the
    engine cannot be asked, the short ID is shown (``podman:0123456789ab``). No engine
    is asked unless some cgroup names one of its containers.
    """
    ref = container_ref_for(pid, procfs_root)
    if ref is None:
        return None
    if ref.engine in _NAME_TABLES:
        name = _name_table(ref.engine).get(ref.id)
        if name is not None:
            return f"{ref.engine}:{name}"
    if ref.engine in ("runc", "nspawn"):
        return f"{ref.engine}:{ref.id}"
    return f"{ref.engine}:{ref.id[:12]}"


def _labeler(nsid: NsId) -> tuple[str, str] | None:
    """nsref's reverse lookup: the foreign container whose PID namespace is ``nsid``."""
    procfs = ProcFS("/proc")
    try:
        pids = procfs.pids()
    except PidnsError:
        return None
    for pid in pids:
        try:
            if procfs.ns_id(pid) != nsid:
                continue
        except PidnsError:
            continue
        # Every process of a namespace is in the same container: the first one decides.
        name = container_name_for(pid)
        if name is None:
            return None
        engine, _, rest = name.partition(":")
        return engine, rest
    return None


def registered() -> Mapping[str, Callable[[str], ForeignContainer]]:
    """The engine prefixes this module resolves (``podman``, ``docker``, ``runc``, ``k8s``)."""
    return dict(_RESOLVERS)


for _engine in _RESOLVERS:
    nsref.register_engine(_engine, _nsref_for(_engine))
nsref.register_ns_labeler(_labeler)
