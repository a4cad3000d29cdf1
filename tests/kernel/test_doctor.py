"""``pidns doctor``: real probes on this kernel, and the fixes it prints for blocked
sysctls (from a fake sysctl tree, so the machine's settings are never changed)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import pidns
from pidns._kernel import sys as ksys
from pidns.cli import cmd_doctor
from pidns.cli.main import main as cli_main
from pidns.ops import doctor
from pidns.ops import translate as tr

pytestmark = [pytest.mark.kernel]

CLI_ENV = {**os.environ, "PYTHONPATH": str(Path(pidns.__file__).resolve().parent.parent)}
CLI = Callable[..., subprocess.CompletedProcess[str]]


def kernel_at_least(major: int, minor: int) -> bool:
    parts = platform.release().split(".")
    return (int(parts[0]), int(parts[1].split("-")[0])) >= (major, minor)


def by_name(checks: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(c["name"]): c for c in checks}


def test_doctor_json_on_this_kernel(pidns_cli: CLI) -> None:
    if os.geteuid() != 0:
        pytest.skip("expects root (CAP_SYS_ADMIN) for the privileged probes")
    r = pidns_cli("doctor", "-J", env=CLI_ENV)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is True
    checks = by_name(doc["checks"])
    for name in ("pid namespaces", "max_pid_namespaces", "create a pid namespace"):
        assert checks[name]["status"] == "ok"
        assert checks[name]["essential"] is True
    # What doctor says agrees with what the kernel does.
    ioctls = checks["translation ioctls"]["status"]
    assert ioctls == ("ok" if kernel_at_least(6, 11) else "missing")
    if ioctls == "ok":
        assert tr.translate(os.getpid(), "host", "host", fast=True) == os.getpid()
        assert tr.USE_IOCTL is True   # the fast path did not have to fall back
    assert checks["pidfd"]["status"] == ("ok" if kernel_at_least(5, 3) else "missing")
    assert checks["PIDFD_GET_INFO"]["status"] == ("ok" if kernel_at_least(6, 13) else "missing")
    assert checks["clone3 set_tid"]["status"] == ("ok" if kernel_at_least(5, 5) else "missing")
    assert checks["ns_last_pid"]["status"] == "ok"
    assert "32 levels" in str(checks["nesting limit"]["detail"])
    assert "probed: 32 more levels" in str(checks["nesting limit"]["detail"])


def test_nesting_probe_from_one_level_down() -> None:
    if os.geteuid() != 0:
        pytest.skip("expects root to run unshare")
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                        sys.executable, "-m", "pidns", "doctor", "-J"],
                       capture_output=True, text=True, env=CLI_ENV, timeout=60)
    assert r.returncode == 0, r.stderr
    checks = by_name(json.loads(r.stdout)["checks"])
    assert "probed: 31 more levels" in str(checks["nesting limit"]["detail"])


def write_sysctls(root: Path, values: dict[str, int]) -> None:
    for name, value in values.items():
        p = root / name.replace(".", "/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"{value}\n")


def test_blocked_sysctls_get_exact_fixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_sysctls(tmp_path, {
        "user.max_pid_namespaces": 0,
        "user.max_user_namespaces": 0,
        "kernel.unprivileged_userns_clone": 0,
        "kernel.apparmor_restrict_unprivileged_userns": 1,
    })
    monkeypatch.setattr(ksys, "has_cap_sys_admin", lambda: False)
    checks = doctor.collect(sysctl_root=str(tmp_path), probes=False)
    named = {c.name: c for c in checks}
    mp = named["max_pid_namespaces"]
    assert (mp.status, mp.essential, mp.fix) == (
        "blocked", True, "sysctl -w user.max_pid_namespaces=15000")
    us = named["unprivileged user namespaces"]
    assert us.status == "blocked"
    assert us.essential  # no CAP_SYS_ADMIN: user namespaces are the only way in
    assert us.fix is not None
    for fix in ("sysctl -w user.max_user_namespaces=15000",
                "sysctl -w kernel.unprivileged_userns_clone=1",
                "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"):
        assert fix in us.fix
    assert not doctor.essentials_ok(checks)
    # The CLI exits 1 on that report, and prints each fix.
    monkeypatch.setattr(cmd_doctor, "collect", lambda: checks)
    assert cli_main(["doctor"]) == 1


def test_all_clear_sysctls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_sysctls(tmp_path, {"user.max_pid_namespaces": 100, "user.max_user_namespaces": 100})
    monkeypatch.setattr(ksys, "has_cap_sys_admin", lambda: False)
    checks = doctor.collect(sysctl_root=str(tmp_path), probes=False)
    named = {c.name: c for c in checks}
    assert named["unprivileged user namespaces"].status == "ok"
    assert named["max_pid_namespaces"].status == "ok"
    assert named["ns_last_pid"].status == "blocked"  # no CAP_SYS_ADMIN
    assert named["ns_last_pid"].fix is not None
    assert doctor.essentials_ok(checks)


def test_rootless(rootless: CLI) -> None:
    r = rootless("doctor", "-J")
    doc = json.loads(r.stdout)
    checks = by_name(doc["checks"])
    userns_ok = checks["unprivileged user namespaces"]["status"] == "ok"
    assert checks["unprivileged user namespaces"]["essential"] is True
    assert r.returncode == (0 if doc["ok"] else 1)
    if userns_ok:
        # Unprivileged: the namespace probe really went through a user namespace.
        assert checks["create a pid namespace"]["status"] == "ok"
        assert "user namespace" in str(checks["create a pid namespace"]["detail"])
    assert checks["ns_last_pid"]["status"] == "blocked"
    assert "pidns run --user" in str(checks["ns_last_pid"]["fix"])
