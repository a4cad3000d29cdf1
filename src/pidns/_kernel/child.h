/* The child side of a spawn, shared by the _native extension (clone-straight-to-exec
 * from the caller) and pidns-init (the PID-1 program, for --init and --nest).
 *
 * Everything here runs in a child made by clone(2) that may share the caller's memory
 * (CLONE_VM|CLONE_VFORK, as posix_spawn does): only async-signal-safe syscalls, no
 * malloc, no stdio. Failures are reported as a fixed-size record on the report socket
 * (a CLOEXEC SOCK_SEQPACKET socketpair): the parent reads records until EOF, and EOF
 * means the command was exec'd. Fail closed: any failed step ends the child before exec.
 */
#ifndef PIDNS_CHILD_H
#define PIDNS_CHILD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

/* Record kinds and stages; mirrored in pidns/_kernel/spawn.py. */
enum { REC_ERROR = 1, REC_PID = 2 };
enum {
    ST_SIGNALS = 1, ST_PDEATHSIG = 2, ST_SETNS = 3, ST_CLONE = 4, ST_SETGROUPS = 5,
    ST_UID_MAP = 6, ST_GID_MAP = 7, ST_MOUNT_PRIVATE = 8, ST_HOSTNAME = 9,
    ST_ROOTFS = 10, ST_MOUNT_PROC = 11, ST_PIVOT_ROOT = 12, ST_CHDIR = 13,
    ST_STDIO = 14, ST_EXEC = 15, ST_UNSHARE = 16, ST_PARENT_GONE = 17, ST_SETSID = 18,
    ST_FDS = 19, ST_EXEC_INIT = 20,
};

struct report { int32_t kind, stage, err, value; };

static inline void report_send(int fd, int kind, int stage, int err, int value, int with_creds)
{
    struct report r = { kind, stage, err, value };
    struct iovec iov = { &r, sizeof r };
    union { char buf[CMSG_SPACE(sizeof(struct ucred))]; struct cmsghdr align; } u;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (with_creds) {
        /* The kernel translates ucred.pid into the receiver's PID namespace
         * (unix(7), SCM_CREDENTIALS): the launcher learns our host PID for free. */
        struct ucred cred = { getpid(), getuid(), getgid() };
        memset(&u, 0, sizeof u);
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_CREDENTIALS;
        c->cmsg_len = CMSG_LEN(sizeof cred);
        memcpy(CMSG_DATA(c), &cred, sizeof cred);
    }
    if (fd >= 0)
        while (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR) {}
}

static inline __attribute__((noreturn)) void child_fail(int fd, int stage, int err)
{
    report_send(fd, REC_ERROR, stage, err, 0, 0);
    /* exec failures map to the shell's 127/126; any other step is pidns's own failure */
    if (stage == ST_EXEC)
        _exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
    _exit(125);
}

static inline int write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = strlen(data);
    ssize_t w = write(fd, data, n);
    int saved = errno;
    close(fd);
    if (w != (ssize_t)n) {
        errno = w < 0 ? saved : EIO;
        return -1;
    }
    return 0;
}

/* Reset every caught signal to SIG_DFL (the caller's Python handlers must not run in
 * a child that shares its memory), restore SIGPIPE/SIGXFSZ as subprocess does, then
 * leave the mask as given. */
static inline void reset_signals(int fd, const sigset_t *mask)
{
    struct sigaction sa;
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP)
            continue;
        if (sigaction(s, NULL, &sa) != 0)
            continue;
        if (sa.sa_handler != SIG_DFL &&
            (sa.sa_handler != SIG_IGN || s == SIGPIPE || s == SIGXFSZ)) {
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = SIG_DFL;
            sigaction(s, &sa, NULL);
        }
    }
    if (sigprocmask(SIG_SETMASK, mask, NULL) != 0)
        child_fail(fd, ST_SIGNALS, errno);
}

/* Arm PR_SET_PDEATHSIG, then close the race: if the parent died before we armed it,
 * the lifeline pipe (whose write end only the parent now holds) reads as hung up. */
static inline void arm_pdeathsig(int fd, int sig, int lifeline_r, int lifeline_w)
{
    if (sig <= 0)
        return;
    if (lifeline_w >= 0)
        close(lifeline_w);
    if (prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0)
        child_fail(fd, ST_PDEATHSIG, errno);
    if (lifeline_r >= 0) {
        struct pollfd p = { lifeline_r, POLLIN, 0 };
        if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)))
            child_fail(fd, ST_PARENT_GONE, ESRCH);
        close(lifeline_r);
    }
}

/* Make the mount tree private, then either pivot into rootfs (with a fresh /proc
 * there) or mount a fresh /proc over the old one. The proc mount shows the PID
 * namespace of the mounting process: ours. */
static inline void setup_mounts(int fd, int make_private, const char *rootfs, int mount_proc)
{
    if (make_private && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        child_fail(fd, ST_MOUNT_PRIVATE, errno);
    if (rootfs) {
        if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) != 0)
            child_fail(fd, ST_ROOTFS, errno);
        if (chdir(rootfs) != 0)
            child_fail(fd, ST_ROOTFS, errno);
        if (mount_proc && mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
            child_fail(fd, ST_MOUNT_PROC, errno);
        /* pivot_root(".", "."): the old root is stacked under the new one, then
         * detached; no directory for it is needed inside rootfs. */
        if (syscall(SYS_pivot_root, ".", ".") != 0)
            child_fail(fd, ST_PIVOT_ROOT, errno);
        if (umount2(".", MNT_DETACH) != 0)
            child_fail(fd, ST_PIVOT_ROOT, errno);
        if (chdir("/") != 0)
            child_fail(fd, ST_PIVOT_ROOT, errno);
    } else if (mount_proc) {
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
            child_fail(fd, ST_MOUNT_PROC, errno);
    }
}

/* Put the stdio fds in place (moving low sources out of the way first, as
 * _posixsubprocess does), mark every other fd >= 3 close-on-exec unless kept. */
static inline void setup_fds(int fd, const int stdio[3], const int *keep, int nkeep, int close_fds)
{
    int src[3];
    for (int i = 0; i < 3; i++) {
        src[i] = stdio[i];
        if (src[i] >= 0 && src[i] < 3 && src[i] != i) {
            src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3);
            if (src[i] < 0)
                child_fail(fd, ST_STDIO, errno);
        }
    }
    for (int i = 0; i < 3; i++) {
        if (src[i] < 0)
            continue;
        if (src[i] == i) {
            int fl = fcntl(i, F_GETFD);
            if (fl >= 0)
                fcntl(i, F_SETFD, fl & ~FD_CLOEXEC);
        } else if (dup2(src[i], i) < 0) {
            child_fail(fd, ST_STDIO, errno);
        }
    }
    if (close_fds) {
#ifdef SYS_close_range
        if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) != 0)
#endif
        {
            long max = sysconf(_SC_OPEN_MAX);
            if (max < 0 || max > 65536)
                max = 65536;
            for (int f = 3; f < max; f++) {
                int fl = fcntl(f, F_GETFD);
                if (fl >= 0)
                    fcntl(f, F_SETFD, fl | FD_CLOEXEC);
            }
        }
    }
    for (int i = 0; i < nkeep; i++) {
        int fl = fcntl(keep[i], F_GETFD);
        if (fl < 0 || fcntl(keep[i], F_SETFD, fl & ~FD_CLOEXEC) != 0)
            child_fail(fd, ST_FDS, errno);
    }
}

/* exec: through an fd (pidns-init, usable after pivot_root), or the first of the
 * candidate paths that works, remembering the most telling errno as execvp does. */
static inline __attribute__((noreturn)) void exec_cmd(int fd, int exec_fd, char *const *paths,
                                               char *const argv[], char *const envp[])
{
    if (exec_fd >= 0) {
        /* our own pidns-init, not the user's command: a failure here is pidns's (125) */
        fexecve(exec_fd, argv, envp);
        child_fail(fd, ST_EXEC_INIT, errno);
    }
    int err = ENOENT;
    for (int i = 0; paths[i]; i++) {
        execve(paths[i], argv, envp);
        if (errno != ENOENT && errno != ENOTDIR)
            err = errno;
        if (errno == E2BIG || errno == ENOMEM)
            break;
    }
    child_fail(fd, ST_EXEC, err);
}

#endif
