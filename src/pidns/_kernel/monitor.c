/* pidns-monitor: the waiter of a detached pidns container (`pidns run -d`).
 *
 *   pidns-monitor PID DIRFD
 *
 * PID is the container's PID 1 (host view) and already our child: the process that
 * cloned it execs us, and exec keeps children. We wait for it, then write
 * DIRFD/exit.json atomically (a temp file, fsync, renameat, fsync of the directory):
 *
 *   {"exit_code": N, "signal": S|null, "finished_at": "RFC3339 UTC", "finished_ns": NS}
 *
 * exit_code is the shell's (128+S when killed by signal S), as docker reports it.
 * DIRFD is the container's state directory, opened (O_DIRECTORY|O_NOFOLLOW) before the
 * exec, so a renamed or replaced path cannot redirect the write.
 *
 * Why a separate program and not Python: it lives as long as the container does, and
 * a Python waiter costs ~8 MB PSS; this costs what tini does (a few hundred KB).
 * Why not the container's own PID 1: PID 1 may be the user's command (no --init), and
 * a SIGKILLed PID 1 records nothing; the parent always sees the status.
 *
 * If we are killed, PID 1 is re-parented and keeps running; `pidns list` then finds
 * the container alive through a pidfd and the namespace inode recorded at start, and
 * once it is gone reports it exited with status unknown.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: pidns-monitor PID DIRFD\n");
        return 125;
    }
    pid_t pid = (pid_t)atoi(argv[1]);
    int dirfd = atoi(argv[2]);
    if (pid <= 0 || dirfd < 0) {
        fprintf(stderr, "pidns-monitor: bad PID or DIRFD\n");
        return 125;
    }
    /* detached: no terminal signals should end the waiter; SIGTERM/SIGKILL still do */
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTSTP, SIG_IGN);
    signal(SIGTTIN, SIG_IGN);
    signal(SIGTTOU, SIG_IGN);

    int st;
    for (;;) {
        pid_t got = waitpid(pid, &st, 0);
        if (got == pid)
            break;
        if (got < 0 && errno != EINTR) {
            /* not our child (a bad exec chain): nothing we can record */
            fprintf(stderr, "pidns-monitor: waitpid %d: %s\n", (int)pid, strerror(errno));
            return 125;
        }
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);

    int code = 125, sig = 0;
    if (WIFEXITED(st)) {
        code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        sig = WTERMSIG(st);
        code = 128 + sig;
    }
    char sigtext[16];
    if (sig)
        snprintf(sigtext, sizeof sigtext, "%d", sig);
    else
        snprintf(sigtext, sizeof sigtext, "null");
    char buf[256];
    int len = snprintf(buf, sizeof buf,
                       "{\"exit_code\": %d, \"signal\": %s, \"finished_at\": "
                       "\"%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ\", \"finished_ns\": %lld}\n",
                       code, sigtext, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec,
                       (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    if (len < 0 || (size_t)len >= sizeof buf)
        return 125;

    char tmp[64];
    snprintf(tmp, sizeof tmp, ".exit.json.%d.tmp", (int)getpid());
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == ENOENT ? 0 : 125; /* the container was removed meanwhile */
    if (write_all(fd, buf, (size_t)len) != 0 || fsync(fd) != 0) {
        close(fd);
        unlinkat(dirfd, tmp, 0);
        return 125;
    }
    close(fd);
    if (renameat(dirfd, tmp, dirfd, "exit.json") != 0) {
        unlinkat(dirfd, tmp, 0);
        return errno == ENOENT ? 0 : 125;
    }
    fsync(dirfd);
    return 0;
}
