"""Kernel constants, spelled as in the kernel headers (linux/sched.h, linux/nsfs.h, ...)."""

from __future__ import annotations

# typing is imported for the checker only: this module is on every start-up path.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

# linux/sched.h
CLONE_NEWNS: Final = 0x00020000
CLONE_NEWCGROUP: Final = 0x02000000
CLONE_NEWUTS: Final = 0x04000000
CLONE_NEWIPC: Final = 0x08000000
CLONE_NEWUSER: Final = 0x10000000
CLONE_NEWPID: Final = 0x20000000
CLONE_NEWNET: Final = 0x40000000
CLONE_NEWTIME: Final = 0x00000080
CLONE_PARENT: Final = 0x00008000

# pid_namespaces(7): 32 levels below the initial namespace (MAX_PID_NS_LEVEL).
MAX_PID_NS_LEVEL: Final = 32

# linux/nsfs.h: _IO(NSIO, n) and _IOR(NSIO, n, int) with NSIO = 0xb7.
NSIO: Final = 0xB7
NS_GET_USERNS: Final = 0xB701
NS_GET_PARENT: Final = 0xB702
NS_GET_NSTYPE: Final = 0xB703
NS_GET_OWNER_UID: Final = 0xB704
NS_GET_PID_FROM_PIDNS: Final = 0x8004B706
NS_GET_TGID_FROM_PIDNS: Final = 0x8004B707
NS_GET_PID_IN_PIDNS: Final = 0x8004B708
NS_GET_TGID_IN_PIDNS: Final = 0x8004B709

# linux/pidfd.h: PIDFD_GET_INFO = _IOWR(PIDFS_IOCTL_MAGIC=0xFF, 11, struct pidfd_info)
# with the 64-byte first version of struct pidfd_info (Linux 6.13).
PIDFD_INFO_SIZE_VER0: Final = 64
PIDFD_GET_INFO: Final = 0xC040FF0B
PIDFD_INFO_PID: Final = 1 << 0
PIDFD_INFO_CREDS: Final = 1 << 1
PIDFD_INFO_CGROUPID: Final = 1 << 2
PIDFD_INFO_EXIT: Final = 1 << 3

# linux/prctl.h
PR_SET_PDEATHSIG: Final = 1
PR_SET_CHILD_SUBREAPER: Final = 36

# sys/mount.h
MS_RDONLY: Final = 1
MS_NOSUID: Final = 2
MS_NODEV: Final = 4
MS_NOEXEC: Final = 8
MS_REMOUNT: Final = 32
MS_BIND: Final = 4096
MS_MOVE: Final = 8192
MS_REC: Final = 16384
MS_PRIVATE: Final = 1 << 18
MNT_DETACH: Final = 2

# socket(7)
SO_PEERCRED: Final = 17
SO_PASSCRED: Final = 16
SO_PEERPIDFD: Final = 77
SCM_CREDENTIALS: Final = 2

# The inode of the initial namespaces (include/linux/proc_ns.h); PROC_PID_INIT_INO.
PROC_DYNAMIC_FIRST: Final = 0xF0000000
PROC_PID_INIT_INO: Final = 0xEFFFFFFC
