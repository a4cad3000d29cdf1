/* floor: the C floor for bench_spawn.py (spawn into a new PID namespace), and the
 * orphan workload for its init part. Compiled at bench time (gcc -O2).
 *
 *   floor once MODE        one spawn of /bin/true, silent; exit status = true's (CLI floor)
 *   floor loop MODE N      N spawns; prints {"mode", "n", "median_us", "mean_us", "min_us"}
 *   floor orphans N MS     N double-forked orphans, then counts zombies in /proc (the
 *                          namespace's own /proc) until 0 or MS ms have passed; prints
 *                          {"n", "loop_ms", "zombies_after_loop", "zombies_final", "settle_ms"}
 *
 * MODE: newpid        clone(CLONE_NEWPID|SIGCHLD) + execv + waitpid (fork-like)
 *       newpid-proc   + CLONE_NEWNS, child makes / private and mounts a fresh /proc
 *       newpid-vfork  clone(CLONE_NEWPID|CLONE_VM|CLONE_VFORK) (what posix_spawn and
 *                     pidns._native do), child only execs
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STACK_SIZE (64 * 1024)

static char *true_argv[] = { "/bin/true", NULL };
static int mount_proc;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void die(const char *what)
{
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int child(void *arg)
{
    (void)arg;
    if (mount_proc) {
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
            _exit(121);
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
            _exit(122);
    }
    execv(true_argv[0], true_argv);
    _exit(127);
}

static int mode_flags(const char *mode)
{
    if (!strcmp(mode, "newpid"))
        return CLONE_NEWPID | SIGCHLD;
    if (!strcmp(mode, "newpid-proc")) {
        mount_proc = 1;
        return CLONE_NEWPID | CLONE_NEWNS | SIGCHLD;
    }
    if (!strcmp(mode, "newpid-vfork"))
        return CLONE_NEWPID | CLONE_VM | CLONE_VFORK | SIGCHLD;
    fprintf(stderr, "floor: unknown mode %s\n", mode);
    exit(2);
}

/* One spawn + wait; returns the wait status. */
static int spawn_once(char *stack, int flags)
{
    pid_t pid = clone(child, stack + STACK_SIZE, flags, NULL);
    if (pid < 0)
        die("clone");
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            die("waitpid");
    return st;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int count_zombies(void)
{
    DIR *d = opendir("/proc");
    if (!d)
        die("opendir /proc");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = 0;
        char *rp = strrchr(buf, ')'); /* comm may hold spaces and parens */
        if (rp && rp[1] == ' ' && rp[2] == 'Z')
            n++;
    }
    closedir(d);
    return n;
}

static int orphans(int n, int settle_ms)
{
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            pid_t g = fork(); /* the grandchild is orphaned at once and exits */
            _exit(g < 0 ? 1 : 0);
        }
        int st;
        while (waitpid(pid, &st, 0) < 0)
            if (errno != EINTR)
                die("waitpid");
    }
    double t1 = now_us();
    int after = count_zombies(), z = after;
    double t2 = now_us();
    while (z > 0 && now_us() - t1 < settle_ms * 1e3) {
        usleep(1000);
        z = count_zombies();
        t2 = now_us();
    }
    printf("{\"n\": %d, \"loop_ms\": %.3f, \"zombies_after_loop\": %d, \"zombies_final\": %d, "
           "\"settle_ms\": %.3f}\n", n, (t1 - t0) / 1e3, after, z, (t2 - t1) / 1e3);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "orphans"))
        return orphans(atoi(argv[2]), atoi(argv[3]));
    if (argc < 3 || (strcmp(argv[1], "once") && strcmp(argv[1], "loop"))) {
        fprintf(stderr, "usage: floor once MODE | floor loop MODE N | floor orphans N MS\n");
        return 2;
    }
    int flags = mode_flags(argv[2]);
    char *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        die("mmap");
    if (!strcmp(argv[1], "once")) {
        int st = spawn_once(stack, flags);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    int n = argc > 3 ? atoi(argv[3]) : 200;
    if (n < 1)
        n = 1;
    double *t = malloc(sizeof *t * (size_t)n);
    if (!t)
        die("malloc");
    for (int i = 0; i < 10; i++) /* warm-up */
        spawn_once(stack, flags);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double a = now_us();
        int st = spawn_once(stack, flags);
        t[i] = now_us() - a;
        sum += t[i];
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "floor: child failed with status 0x%x\n", st);
            return 1;
        }
    }
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    double med = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
    printf("{\"mode\": \"%s\", \"n\": %d, \"median_us\": %.2f, \"mean_us\": %.2f, "
           "\"min_us\": %.2f}\n", argv[2], n, med, sum / n, t[0]);
    free(t);
    return 0;
}
