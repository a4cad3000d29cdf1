"""Types of the C extension pidns._kernel._native (see _native.c)."""

from collections.abc import Sequence

STACK_SIZE: int

def spawn(
    argv: Sequence[str | bytes],
    paths: Sequence[str | bytes],
    envp: Sequence[str | bytes],
    *,
    clone_flags: int = 0,
    join: Sequence[tuple[int, int]] = (),
    unshare_flags: int = 0,
    report_argi: int = -1,
    uid_map: str | None = None,
    gid_map: str | None = None,
    setgroups_deny: bool = False,
    hostname: str | None = None,
    rootfs: str | None = None,
    cwd: str | None = None,
    make_private: bool = False,
    mount_proc: bool = False,
    setsid: bool = False,
    send_pid: bool = False,
    stdio: tuple[int, int, int] = (-1, -1, -1),
    keep_fds: Sequence[int] = (),
    close_fds: bool = False,
    exec_fd: int = -1,
    pdeathsig: int = 0,
    vfork: bool = True,
) -> tuple[int, int, int, int]: ...
def pivot_root(new_root: str | bytes, put_old: str | bytes) -> None: ...
def clone3_set_tid(flags: int, set_tid: Sequence[int]) -> int: ...
