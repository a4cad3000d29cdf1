/* pidns-init: the PID 1 of a pidns namespace, for `--init` and `--nest`.
 *
 *   pidns-init [--report FD] [--nest K] [--proc] [--init] [--send-pid] -- CMD [ARG...]
 *
 * --nest K: make K more PID-namespace levels below this one; each level's PID 1 is a
 *           relay that forwards signals to the level below, reaps orphans, and exits
 *           with the status of the level below. The deepest level gets a new mount
 *           namespace and (with --proc) a fresh /proc.
 * --init:   at the deepest level, stay PID 1 (tini's shape: signals blocked and taken
 *           with sigtimedwait, forwarded to CMD, every zombie reaped) and run CMD as
 *           PID 2; exit with CMD's status (128+N if killed by signal N).
 * otherwise the deepest level execs CMD as its PID 1.
 * --report FD: failure records and (--send-pid) CMD's PID go to the launcher on FD.
 *
 * Why C: a Python PID 1 costs ~5 MB PSS; this costs what tini does (~0.3 MB).
 * Blocking signals is what makes forwarding work for a namespace's PID 1: the kernel
 * drops SIG_DFL signals to init, but never ignores blocked ones; they stay queued.
 */
#include "child.h"

#include <stdio.h>
#include <stdlib.h>

static int report = -1;

static void usage(void)
{
    fprintf(stderr, "usage: pidns-init [--report FD] [--nest K] [--proc] [--init] "
                    "[--send-pid] -- CMD [ARG...]\n");
    _exit(125);
}

static void fill_waitset(sigset_t *set)
{
    /* everything but the synchronous signals, which must stay deliverable */
    sigfillset(set);
    int sync[] = { SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGTRAP, SIGSYS, SIGTTIN,
                   SIGTTOU, SIGKILL, SIGSTOP };
    for (size_t i = 0; i < sizeof sync / sizeof *sync; i++)
        sigdelset(set, sync[i]);
}

static int status_of(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 125;
}

/* Forward signals to `child`, reap every zombie, return when `child` has exited. */
static int supervise(pid_t child, const sigset_t *set)
{
    for (;;) {
        siginfo_t info;
        struct timespec ts = { 1, 0 };
        int sig = sigtimedwait(set, &info, &ts);
        if (sig > 0 && sig != SIGCHLD) {
            if (kill(child, sig) != 0 && errno != ESRCH)
                fprintf(stderr, "pidns-init: cannot forward signal %d: %s\n", sig,
                        strerror(errno));
        }
        for (;;) {
            int st;
            pid_t p = waitpid(-1, &st, WNOHANG);
            if (p <= 0)
                break;
            if (p == child)
                return status_of(st);
        }
    }
}

int main(int argc, char **argv)
{
    int nest = 0, proc = 0, init = 0, send_pid = 0, i;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        } else if (!strcmp(argv[i], "--report") && i + 1 < argc) {
            report = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--nest") && i + 1 < argc) {
            nest = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--proc")) {
            proc = 1;
        } else if (!strcmp(argv[i], "--init")) {
            init = 1;
        } else if (!strcmp(argv[i], "--send-pid")) {
            send_pid = 1;
        } else {
            usage();
        }
    }
    if (i >= argc || nest < 0 || nest > 32)
        usage();
    char **cmd = argv + i;
    /* the report socket must close when CMD execs: that EOF is the launcher's
     * "it started" */
    if (report >= 0 && fcntl(report, F_SETFD, FD_CLOEXEC) != 0)
        report = -1;

    sigset_t waitset, empty;
    fill_waitset(&waitset);
    sigemptyset(&empty);
    signal(SIGTTIN, SIG_IGN);
    signal(SIGTTOU, SIG_IGN);
    if (sigprocmask(SIG_BLOCK, &waitset, NULL) != 0)
        child_fail(report, ST_SIGNALS, errno);

    /* Relay levels: each iteration makes one more PID namespace below this one. */
    while (nest > 0) {
        int flags = CLONE_NEWPID | SIGCHLD | (nest == 1 ? CLONE_NEWNS : 0);
        pid_t child = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
        if (child < 0)
            child_fail(report, ST_CLONE, errno);
        if (child > 0) {
            if (report >= 0)
                close(report);
            _exit(supervise(child, &waitset));
        }
        nest--;
        if (nest == 0)
            setup_mounts(report, 1, NULL, proc);
    }

    /* CMD's PATH search: execvp's, with the PATH of our environment. */
    if (!init) {
        if (sigprocmask(SIG_SETMASK, &empty, NULL) != 0)
            child_fail(report, ST_SIGNALS, errno);
        signal(SIGTTIN, SIG_DFL);
        signal(SIGTTOU, SIG_DFL);
        if (send_pid)
            report_send(report, REC_PID, 0, 0, 0, 1);
        execvp(cmd[0], cmd);
        child_fail(report, ST_EXEC, errno);
    }

    pid_t child = fork();
    if (child < 0)
        child_fail(report, ST_CLONE, errno);
    if (child == 0) {
        signal(SIGTTIN, SIG_DFL);
        signal(SIGTTOU, SIG_DFL);
        if (sigprocmask(SIG_SETMASK, &empty, NULL) != 0)
            child_fail(report, ST_SIGNALS, errno);
        if (send_pid)
            report_send(report, REC_PID, 0, 0, 0, 1);
        execvp(cmd[0], cmd);
        child_fail(report, ST_EXEC, errno);
    }
    if (report >= 0)
        close(report);
    return supervise(child, &waitset);
}
