/* nsfarm K M: K PID namespaces of M sleeping processes each, for the bench/ scripts.
 *
 * Each namespace's PID 1 forks M-1 children that pause(). Once every process exists,
 * prints one line "READY K PID1 PID2 ..." (host PIDs of the K inits) and waits for EOF
 * on stdin; then SIGKILLs each init (the kernel ends the rest of its namespace) and
 * reaps them. If nsfarm itself dies, PR_SET_PDEATHSIG ends the inits too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void init_main(int m, int ready)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (int j = 1; j < m; j++) {
        pid_t c = fork();
        if (c < 0)
            _exit(1);
        if (c == 0)
            for (;;)
                pause();
    }
    char b = 1;
    if (write(ready, &b, 1) != 1)
        _exit(1);
    close(ready);
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: nsfarm K M\n");
        return 2;
    }
    int k = atoi(argv[1]), m = atoi(argv[2]);
    if (k < 1 || m < 1) {
        fprintf(stderr, "nsfarm: K and M must be >= 1\n");
        return 2;
    }
    int ready[2];
    if (pipe(ready) != 0) {
        perror("nsfarm: pipe");
        return 1;
    }
    pid_t *inits = calloc((size_t)k, sizeof *inits);
    for (int i = 0; i < k; i++) {
        pid_t p = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, NULL);
        if (p < 0) {
            perror("nsfarm: clone");
            for (int j = 0; j < i; j++)
                kill(inits[j], SIGKILL);
            return 1;
        }
        if (p == 0) {
            close(ready[0]);
            init_main(m, ready[1]);
        }
        inits[i] = p;
    }
    close(ready[1]);
    int got = 0;
    char b;
    while (got < k && read(ready[0], &b, 1) == 1)
        got++;
    printf("READY %d", k);
    for (int i = 0; i < k; i++)
        printf(" %d", inits[i]);
    printf("\n");
    fflush(stdout);
    char buf[256];
    while (read(0, buf, sizeof buf) > 0) {
    }
    for (int i = 0; i < k; i++)
        kill(inits[i], SIGKILL);
    for (int i = 0; i < k; i++)
        while (waitpid(inits[i], NULL, 0) < 0 && errno == EINTR) {
        }
    fprintf(stderr, "nsfarm: removed %d namespaces\n", k);
    return 0;
}
