"""Pure parser of ``/proc/PID/cgroup`` and the cgroup path -> container mapping.

``/proc/PID/cgroup`` (cgroups(7)) has one line per hierarchy,
``HIERARCHY-ID:CONTROLLER-LIST:CGROUP-PATH``: cgroup v1 lines name their controllers
(``4:memory:/docker/ID``, ``9:name=systemd:/...``), the v2 line is ``0::/PATH``, and a
hybrid system prints both. The path may itself contain ``:``, so a line is split at its
first two colons only; a cgroup removed while the process is in it (v2) ends in
`` (deleted)``.

Container engines put each container in a cgroup whose name carries its ID. The names
depend on the engine and on its cgroup manager (systemd scopes or plain cgroupfs):

====================  ==========================================================
podman (systemd)      ``.../machine.slice/libpod-ID.scope[/container]``
podman (cgroupfs)     ``/libpod_parent/libpod-ID``
podman's conmon       ``libpod-conmon-ID.scope``, ``/libpod_parent/conmon`` (not the
                      container: the monitor process beside it)
docker                ``/system.slice/docker-ID.scope``, ``/docker/ID``
containerd (CRI)      ``cri-containerd-ID.scope``
CRI-O                 ``crio-ID.scope`` (``crio-conmon-ID.scope``: its monitor)
Kubernetes            ``/kubepods/[besteffort|burstable/]podUID/ID`` (cgroupfs driver),
                      ``kubepods-QOS-podUID.slice/RUNTIME-ID.scope`` (systemd driver,
                      ``-`` in the UID written as ``_``)
systemd-nspawn        ``machine.slice/machine-NAME.scope``
====================  ==========================================================

Plain runc puts a container in ``/ID`` (or wherever its config's ``cgroupsPath`` says):
nothing in the path tells it apart from any other cgroup, so it is not recognised here;
:mod:`pidns.ops.engines` matches such paths against runc's state directory.

Nothing here does I/O; every function raises :class:`pidns.errors.ParseError` and nothing
else, whatever text it is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from pidns.errors import ParseError

_ACTION: Final = "parse /proc/PID/cgroup"
_DELETED: Final = " (deleted)"

#: A full container ID, as docker, podman, containerd and CRI-O make them.
_HEX_ID: Final = r"[0-9a-f]{64}"

# One cgroup-path component each; the first group is the ID (or the nspawn machine name).
_SCOPES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(rf"libpod-({_HEX_ID})(?:\.scope)?"), "podman"),
    (re.compile(rf"docker-({_HEX_ID})\.scope"), "docker"),
    (re.compile(rf"cri-containerd-({_HEX_ID})\.scope"), "containerd"),
    (re.compile(rf"crio-({_HEX_ID})\.scope"), "crio"),
)
# Monitors that live beside a container, never in it (conmon for podman and CRI-O).
_MONITORS: Final = re.compile(
    rf"(?:libpod-conmon-{_HEX_ID}(?:\.scope)?|crio-conmon-{_HEX_ID}\.scope|conmon)"
)
_BARE_ID: Final = re.compile(_HEX_ID)
_NSPAWN: Final = re.compile(r"machine-(.+)\.scope")
# kubepods: "pod<uid>" (cgroupfs driver) or "kubepods[-QOS]-pod<uid_with_underscores>.slice".
_POD_DIR: Final = re.compile(r"pod([0-9a-f_-]{36})")
_POD_SLICE: Final = re.compile(r"kubepods(?:-[a-z]+)?-pod([0-9a-f_]{36})\.slice")
_HIERARCHY: Final = re.compile(r"[0-9]{1,10}")

# Which line to trust when they disagree: the v2 line, then pids, systemd, memory, cpu.
_PREFERENCE: Final = ("", "pids", "name=systemd", "memory", "cpu")


@dataclass(frozen=True, slots=True)
class CgroupLine:
    """One line of ``/proc/PID/cgroup``.

    ``controllers`` is empty for the v2 line (``0::/path``); ``path`` is as printed, less
    a trailing `` (deleted)``, which sets ``deleted``.
    """

    hierarchy: int
    controllers: tuple[str, ...]
    path: str
    deleted: bool = False

    @property
    def unified(self) -> bool:
        """True for the cgroup v2 line (hierarchy 0, no controllers)."""
        return self.hierarchy == 0 and not self.controllers


@dataclass(frozen=True, slots=True)
class ContainerRef:
    """A container named by a cgroup path.

    ``engine`` is ``podman``, ``docker``, ``containerd``, ``crio``, ``nspawn``, or ``k8s``
    for a container under ``kubepods`` (then ``runtime`` says which CRI runtime's scope it
    is in, None for the cgroupfs driver's bare IDs, and ``pod_uid`` is the pod's UID).
    ``id`` is the engine's full container ID (the machine name for nspawn).
    """

    engine: str
    id: str
    pod_uid: str | None = None
    runtime: str | None = None

    def __str__(self) -> str:
        return f"{self.engine}:{self.id[:12] if _BARE_ID.fullmatch(self.id) else self.id}"


def _garbled(text: str, why: str) -> ParseError:
    return ParseError(_ACTION, f"{why} in {text[:60]!r}",
                      hint="the kernel's format differs from cgroups(7); report it")


def parse_cgroup(data: str | bytes) -> tuple[CgroupLine, ...]:
    """Parse ``/proc/PID/cgroup`` (cgroups(7), v1, v2 or hybrid). Pure.

    Empty text (a process that exited while being read) gives ``()``.

    Raises:
        ParseError: a line without two colons, a hierarchy ID that is not a number, or a
            path that is not absolute.
    """
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    lines: list[CgroupLine] = []
    for line in text.split("\n"):
        if not line:
            continue
        parts = line.split(":", 2)
        if len(parts) != 3:
            raise _garbled(line, "no HIERARCHY:CONTROLLERS:PATH")
        hier, ctrls, path = parts
        if not _HIERARCHY.fullmatch(hier):
            raise _garbled(line, "hierarchy ID is not a number")
        deleted = path.endswith(_DELETED)
        if deleted:
            path = path[: -len(_DELETED)]
        if not path.startswith("/"):
            raise _garbled(line, "cgroup path is not absolute")
        controllers = tuple(c for c in ctrls.split(",") if c)
        lines.append(CgroupLine(int(hier), controllers, path, deleted))
    return tuple(lines)


def _pod_uid(components: list[str]) -> str | None:
    for comp in components:
        if m := _POD_SLICE.fullmatch(comp):
            return m.group(1).replace("_", "-")
        if m := _POD_DIR.fullmatch(comp):
            return m.group(1).replace("_", "-")
    return None


def _unescape_systemd(name: str) -> str:
    # systemd-escape(1): "\x2d" for "-" and friends.
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), name)


def container_from_path(path: str) -> ContainerRef | None:
    """The container whose cgroup ``path`` is (or is inside), or None. Pure.

    The innermost component that names a container wins, so a process in a sub-cgroup
    of a container (``libpod-ID.scope/container``, ``docker/ID/init.scope``) is in that
    container. A monitor's cgroup (conmon) is not a container.
    """
    comps = [c for c in path.split("/") if c]
    kube = any(c == "kubepods" or c.startswith("kubepods.") or c.startswith("kubepods-")
               for c in comps)
    for i in range(len(comps) - 1, -1, -1):
        comp = comps[i]
        if _MONITORS.fullmatch(comp):
            continue
        for pattern, engine in _SCOPES:
            if m := pattern.fullmatch(comp):
                if kube:
                    return ContainerRef("k8s", m.group(1), _pod_uid(comps[:i]), engine)
                return ContainerRef(engine, m.group(1))
        if _BARE_ID.fullmatch(comp) and i > 0:
            parent = comps[i - 1]
            if kube and (uid := _pod_uid(comps[:i])) is not None:
                return ContainerRef("k8s", comp, uid, None)
            if parent == "docker":
                return ContainerRef("docker", comp)
        if (m := _NSPAWN.fullmatch(comp)) and i > 0 and comps[i - 1] == "machine.slice":
            return ContainerRef("nspawn", _unescape_systemd(m.group(1)))
    return None


def _ranked(lines: tuple[CgroupLine, ...]) -> list[CgroupLine]:
    def rank(line: CgroupLine) -> int:
        keys = ("",) if line.unified else line.controllers
        best = len(_PREFERENCE)
        for k in keys:
            if k in _PREFERENCE:
                best = min(best, _PREFERENCE.index(k))
        return best

    return sorted(lines, key=rank)


def container_from_cgroup(data: str | bytes) -> ContainerRef | None:
    """The container named by a ``/proc/PID/cgroup`` text, or None. Pure.

    Lines are tried in the order v2, pids, name=systemd, memory, cpu, then the rest; the
    first that names a container decides (on a hybrid system the v2 line may be ``/``
    while the v1 lines carry the container's cgroup).

    Raises:
        ParseError: the text is not a /proc/PID/cgroup file (see :func:`parse_cgroup`).
    """
    for line in _ranked(parse_cgroup(data)):
        ref = container_from_path(line.path)
        if ref is not None:
            return ref
    return None


def cgroup_paths(data: str | bytes) -> tuple[str, ...]:
    """The distinct cgroup paths of a /proc/PID/cgroup text, preferred line first. Pure."""
    seen: list[str] = []
    for line in _ranked(parse_cgroup(data)):
        if line.path not in seen:
            seen.append(line.path)
    return tuple(seen)
