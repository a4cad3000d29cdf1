"""NSREF parsing and resolution order (DESIGN.md "Namespace references (NSREF)").

Resolution of ``host``/``pid:N``/paths/inodes uses the live /proc of the test process
(only the caller's own namespace, which any user can open); engines and containers are
fake plug-ins registered through the public registry.
"""

from __future__ import annotations

import os
import re

import pytest

from pidns.errors import NotFound, UsageError
from pidns.ops import nsref
from pidns.ops.nsref import NsRef, classify, resolve


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty registries, and the real plug-in modules counted as already imported."""
    monkeypatch.setattr(nsref, "_ENGINES", {})
    monkeypatch.setattr(nsref, "_CONTAINER_RESOLVERS", [])
    monkeypatch.setattr(nsref, "_LABELERS", [])
    monkeypatch.setattr(nsref, "_tried_import", {"engines", "containers"})


def self_ino() -> int:
    return os.stat("/proc/self/ns/pid").st_ino


@pytest.mark.parametrize(("ref", "kind"), [
    ("host", "host"),
    ("pid:1", "pid"),
    ("pid:abc", "pid"),
    ("ns:4026531836", "ns"),
    ("/proc/1/ns/pid", "path"),
    ("./pidns-file", "path"),
    ("podman:web", "engine"),
    ("docker:web", "engine"),
    ("runc:abc123", "engine"),
    ("k8s:default/pod/ctr", "engine"),   # k8s refs carry slashes but are still engine refs
    ("web", "container"),
    ("web-1.prod_x", "container"),
    ("abcd", "container"),
    ("1234", "container"),                # all digits, short: only an ID prefix can match
    ("4026531836", "container-or-inode"),
    ("4026532999", "container-or-inode"),
    ("123", "invalid"),                   # all digits, < 4 chars, not an inode
    ("-web", "invalid"),
    ("we b", "invalid"),
])
def test_classify(ref: str, kind: str) -> None:
    assert classify(ref) == kind


def test_k8s_ref_with_slashes_is_engine_not_path() -> None:
    # "k8s:ns/pod" contains "/", but the explicit ENGINE: prefix wins.
    assert classify("k8s:kube-system/coredns") == "engine"


def test_host_is_callers_namespace() -> None:
    with resolve("host") as ref:
        assert ref.id.ino == self_ino()
        assert ref.pid == os.getpid()
        assert ref.is_caller()
        assert os.fstat(ref.fd()).st_ino == self_ino()


def test_pid_form() -> None:
    ref = resolve(f"pid:{os.getpid()}")
    assert (ref.kind, ref.pid, ref.id.ino) == ("pid", os.getpid(), self_ino())
    assert ref.label() == f"pid:[{self_ino()}]"


def test_pid_form_bad_number() -> None:
    with pytest.raises(UsageError, match="decimal"):
        resolve("pid:abc")


def test_pid_form_no_such_process() -> None:
    with pytest.raises(NotFound, match="no process 99999999"):
        resolve("pid:99999999")


def test_ns_form_and_bare_inode_find_an_fd() -> None:
    ino = self_ino()
    for ref in (resolve(f"ns:{ino}"), resolve(str(ino))):
        assert ref.id.ino == ino
        assert os.fstat(ref.fd()).st_ino == ino
        assert ref.pid is not None  # a process in it was found
    assert resolve(str(ino)).kind == "inode"


def test_ns_form_unknown_inode_says_what_was_tried() -> None:
    with pytest.raises(NotFound) as ei:
        resolve("ns:4026539999")
    msg = str(ei.value)
    assert "/proc/*/ns/pid" in msg
    assert "mountinfo" in msg


def test_path_form() -> None:
    ref = resolve(f"/proc/{os.getpid()}/ns/pid")
    assert (ref.kind, ref.pid, ref.id.ino) == ("path", os.getpid(), self_ino())


def test_path_form_not_a_pid_namespace() -> None:
    with pytest.raises(UsageError, match="another type of namespace"):
        resolve("/proc/self/ns/net")
    with pytest.raises(UsageError, match="not an nsfs"):
        resolve("/etc/hostname")


def test_path_form_missing_file() -> None:
    with pytest.raises(NotFound, match="does not exist"):
        resolve("/nonexistent/ns/pid")


def test_engine_registry_and_unknown_engine() -> None:
    calls: list[str] = []

    def fake(rest: str) -> NsRef:
        calls.append(rest)
        return nsref.from_pid(os.getpid(), spec=f"podman:{rest}", kind="engine",
                              container=rest, engine="podman")

    nsref.register_engine("podman", fake)
    ref = resolve("podman:web")
    assert calls == ["web"]
    assert (ref.container, ref.engine, ref.id.ino) == ("web", "podman", self_ino())
    assert ref.label() == f"pid:[{self_ino()}] (podman:web)"
    with pytest.raises(NotFound, match=re.escape("docker: references need pidns.ops.engines")):
        resolve("docker:web")
    with pytest.raises(NotFound, match="unknown engine 'lxc'"):
        resolve("lxc:web")


def test_explicit_forms_are_not_shadowed_by_containers() -> None:
    # A container resolver that claims everything must never see explicit forms.
    seen: list[str] = []

    def greedy(name: str) -> NsRef:
        seen.append(name)
        return nsref.from_pid(os.getpid(), spec=name, kind="container", container=name,
                              engine="pidns")

    nsref.register_container_resolver(greedy)
    assert resolve("host").kind == "host"
    assert resolve(f"pid:{os.getpid()}").kind == "pid"
    assert resolve(f"ns:{self_ino()}").kind == "ns"
    assert resolve("/proc/self/ns/pid").kind == "path"
    assert seen == []
    # A bare inode-looking string goes to containers first (an ID prefix may be digits).
    assert resolve(str(self_ino())).kind == "container"
    assert seen == [str(self_ino())]


def test_container_then_bare_inode_order() -> None:
    nsref.register_container_resolver(lambda name: None)
    ref = resolve(str(self_ino()))
    assert ref.kind == "inode"


def test_ambiguous_prefix_is_not_found() -> None:
    ids = ["abcd1111", "abcd2222", "ffff0000"]

    def by_prefix(ref: str) -> NsRef | None:
        hits = [i for i in ids if i.startswith(ref)]
        if len(hits) > 1:
            raise NotFound(f"resolve {ref!r}", f"prefix matches {len(hits)} containers: "
                           + ", ".join(hits))
        if hits:
            return nsref.from_pid(os.getpid(), spec=ref, kind="container",
                                  container=hits[0], engine="pidns")
        return None

    nsref.register_container_resolver(by_prefix)
    with pytest.raises(NotFound, match="matches 2 containers"):
        resolve("abcd")
    assert resolve("ffff").container == "ffff0000"
    with pytest.raises(NotFound, match="tried: host, pid:N, ns:INODE, path, pidns container"):
        resolve("nosuchname")


def test_no_match_says_what_was_tried() -> None:
    with pytest.raises(NotFound) as ei:
        resolve("web")
    assert "tried: host, pid:N, ns:INODE, path" in str(ei.value)
    assert "no container store available" in str(ei.value)
    with pytest.raises(NotFound, match="write pid:1234"):
        resolve("1234")


def test_empty_and_invalid() -> None:
    with pytest.raises(UsageError, match="empty"):
        resolve("")
    with pytest.raises(NotFound):
        resolve("we b")


def test_resolved_ref_passes_through_and_reopens() -> None:
    ref = resolve("host")
    assert resolve(ref) is ref
    fd = ref.fd()
    ref.close()
    assert ref.fd() != -1
    assert os.fstat(ref.fd()).st_ino == self_ino()
    del fd


def test_ancestry_of_own_namespace_is_itself() -> None:
    ref = resolve("host")
    assert ref.ancestry() == (ref.id,)


def test_labeler_reverse_lookup() -> None:
    target = resolve("host").id
    nsref.register_ns_labeler(lambda ns: ("pidns", "web") if ns == target else None)
    assert nsref.container_of(target) == ("pidns", "web")
