/* pidns._kernel._native: clone straight to exec, as posix_spawn does, but into new
 * (or existing) namespaces.
 *
 * Why C: a Python fork costs ~1 ms more than a C fork here (copy-on-write faults of
 * the interpreter's heap), and the textbook fork -> unshare -> fork -> exec path is
 * 5x the C floor. clone(CLONE_VM|CLONE_VFORK|CLONE_NEW*) with a C child that only
 * makes syscalls is the C floor itself, safe in a multi-threaded caller (the child
 * touches no lock and no Python object), and the child is the caller's own child,
 * so the handle's pid is a real, waitable PID in the caller's namespace.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "child.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define STACK_SIZE (256 * 1024)
#define MAX_JOIN 8
#define MAX_KEEP 64

struct spec {
    int report_fd;
    int pdeathsig, lifeline_r, lifeline_w;
    int njoin, join_fd[MAX_JOIN], join_type[MAX_JOIN];
    int unshare_flags;           /* unshare(2) in the final child (exec into a ns) */
    const char *uid_map, *gid_map;
    int setgroups_deny;
    const char *hostname, *rootfs, *cwd;
    int make_private, mount_proc, setsid_, send_pid;
    int stdio[3];
    int keep[MAX_KEEP], nkeep, close_fds;
    int exec_fd;
    char **paths, **argv, **envp;
    sigset_t child_mask;
    char *stack2;                /* for the second clone when joining */
    int vfork2;
};

/* The final child: becomes the command. Runs in our memory (CLONE_VM) or a copy. */
static int final_child(void *arg)
{
    struct spec *s = arg;
    int fd = s->report_fd;

    reset_signals(fd, &s->child_mask);
    arm_pdeathsig(fd, s->pdeathsig, s->lifeline_r, s->lifeline_w);
    if (s->unshare_flags && unshare(s->unshare_flags) != 0)
        child_fail(fd, ST_UNSHARE, errno);
    /* A new user namespace maps the caller to root: writing our own single-line map
     * is allowed without privilege (user_namespaces(7)), after denying setgroups. */
    if (s->setgroups_deny && write_file("/proc/self/setgroups", "deny") != 0)
        child_fail(fd, ST_SETGROUPS, errno);
    if (s->uid_map && write_file("/proc/self/uid_map", s->uid_map) != 0)
        child_fail(fd, ST_UID_MAP, errno);
    if (s->gid_map && write_file("/proc/self/gid_map", s->gid_map) != 0)
        child_fail(fd, ST_GID_MAP, errno);
    if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) != 0)
        child_fail(fd, ST_HOSTNAME, errno);
    setup_mounts(fd, s->make_private, s->rootfs, s->mount_proc);
    if (s->cwd && chdir(s->cwd) != 0)
        child_fail(fd, ST_CHDIR, errno);
    if (s->setsid_ && setsid() < 0)
        child_fail(fd, ST_SETSID, errno);
    setup_fds(fd, s->stdio, s->keep, s->nkeep, s->close_fds);
    if (s->send_pid)
        report_send(fd, REC_PID, 0, 0, 0, 1);
    exec_cmd(fd, s->exec_fd, s->paths, s->argv, s->envp);
}

/* Joining existing namespaces: setns(CLONE_NEWPID) changes only where our children
 * go, so this intermediate enters them and clones the final child with CLONE_PARENT,
 * which makes it the *caller's* child; then it reports that PID and exits. */
static int join_child(void *arg)
{
    struct spec *s = arg;
    int fd = s->report_fd;
    sigset_t all;
    sigfillset(&all);
    for (int i = 0; i < s->njoin; i++)
        if (setns(s->join_fd[i], s->join_type[i]) != 0)
            child_fail(fd, ST_SETNS, errno);
    /* only the caller keeps the lifeline's write end, so the final child can tell */
    if (s->lifeline_w >= 0) {
        close(s->lifeline_w);
        s->lifeline_w = -1;
    }
    int flags = CLONE_PARENT | SIGCHLD | (s->vfork2 ? CLONE_VM | CLONE_VFORK : 0);
    pid_t pid = clone(final_child, s->stack2 + STACK_SIZE, flags, s);
    if (pid < 0)
        child_fail(fd, ST_CLONE, errno);
    report_send(fd, REC_PID, 0, 0, (int)pid, 0);
    _exit(0);
}

static void free_strv(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

/* A sequence of bytes-like/str (fs-encoded) -> NULL-terminated malloc'd char*[]. */
static char **to_strv(PyObject *seq, const char *what)
{
    PyObject *fast = PySequence_Fast(seq, what);
    if (!fast)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    char **v = calloc((size_t)n + 1, sizeof *v);
    if (!v) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = NULL;
        if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(fast, i), &b)) {
            free_strv(v);
            Py_DECREF(fast);
            return NULL;
        }
        v[i] = strdup(PyBytes_AS_STRING(b));
        Py_DECREF(b);
        if (!v[i]) {
            free_strv(v);
            Py_DECREF(fast);
            PyErr_NoMemory();
            return NULL;
        }
    }
    Py_DECREF(fast);
    return v;
}

static int to_ints(PyObject *seq, int *out, int max, int *n, const char *what)
{
    *n = 0;
    if (seq == Py_None)
        return 0;
    PyObject *fast = PySequence_Fast(seq, what);
    if (!fast)
        return -1;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(fast);
    if (len > max) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_ValueError, "%s: at most %d entries", what, max);
        return -1;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
        out[i] = (int)v;
    }
    *n = (int)len;
    Py_DECREF(fast);
    return 0;
}

static const char *opt_str(PyObject *o, PyObject **keep)
{
    *keep = NULL;
    if (o == Py_None)
        return NULL;
    if (!PyUnicode_FSConverter(o, keep))
        return (const char *)-1;
    return PyBytes_AS_STRING(*keep);
}

PyDoc_STRVAR(spawn_doc,
"spawn(argv, paths, envp, *, clone_flags=0, join=(), unshare_flags=0, report_argi=-1,\n"
"      uid_map=None, gid_map=None, setgroups_deny=False, hostname=None, rootfs=None,\n"
"      cwd=None, make_private=False, mount_proc=False, setsid=False, send_pid=False,\n"
"      stdio=(-1,-1,-1), keep_fds=(), close_fds=False, exec_fd=-1, pdeathsig=0,\n"
"      vfork=True) -> (pid, command_pid, failed_stage, errno)\n\n"
"Clone a child (in new namespaces per clone_flags, or inside the namespaces of the\n"
"(fd, nstype) pairs in join) that sets itself up and execs argv. Failures of the\n"
"child come back as (stage, errno) != (0, 0); then it has been reaped. pid is our\n"
"child (with join: the command, made our child by CLONE_PARENT); command_pid is the\n"
"command's PID in our view. report_argi: argv index to replace by the report fd.");

static PyObject *py_spawn(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {
        "argv", "paths", "envp", "clone_flags", "join", "unshare_flags", "report_argi",
        "uid_map", "gid_map", "setgroups_deny", "hostname", "rootfs", "cwd",
        "make_private", "mount_proc", "setsid", "send_pid", "stdio", "keep_fds",
        "close_fds", "exec_fd", "pdeathsig", "vfork", NULL};
    PyObject *argv_o, *paths_o, *envp_o, *join_o = Py_None, *keep_o = Py_None;
    PyObject *uid_o = Py_None, *gid_o = Py_None, *host_o = Py_None, *root_o = Py_None;
    PyObject *cwd_o = Py_None;
    int clone_flags = 0, unshare_flags = 0, report_argi = -1, setgroups_deny = 0;
    int make_private = 0, mount_proc = 0, setsid_ = 0, send_pid = 0, close_fds = 0;
    int exec_fd = -1, pdeathsig = 0, vfork = 1;
    int stdio[3] = {-1, -1, -1};
    int sp[2] = {-1, -1}, lifeline[2] = {-1, -1};

    if (!PyArg_ParseTupleAndKeywords(
            args, kw, "OOO|$iOiiOOpOOOpppp(iii)Opiip", kwlist, &argv_o, &paths_o,
            &envp_o, &clone_flags, &join_o, &unshare_flags, &report_argi, &uid_o, &gid_o,
            &setgroups_deny, &host_o, &root_o, &cwd_o, &make_private, &mount_proc,
            &setsid_, &send_pid, &stdio[0], &stdio[1], &stdio[2], &keep_o, &close_fds,
            &exec_fd, &pdeathsig, &vfork))
        return NULL;

    struct spec s;
    memset(&s, 0, sizeof s);
    PyObject *k_uid = NULL, *k_gid = NULL, *k_host = NULL, *k_root = NULL, *k_cwd = NULL;
    PyObject *result = NULL;
    char *stack = MAP_FAILED, *stack2 = MAP_FAILED;

    s.argv = to_strv(argv_o, "argv");
    s.paths = s.argv ? to_strv(paths_o, "paths") : NULL;
    s.envp = s.paths ? to_strv(envp_o, "envp") : NULL;
    if (!s.envp)
        goto out;
    if (!s.argv[0]) {
        PyErr_SetString(PyExc_ValueError, "argv must not be empty");
        goto out;
    }
    if (to_ints(keep_o, s.keep, MAX_KEEP, &s.nkeep, "keep_fds") < 0)
        goto out;
    /* The report channel: ours gets SO_PASSCRED so a record can carry the sender's
     * PID translated into our namespace; the lifeline's write end stays with us. */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0 ||
        pipe2(lifeline, O_CLOEXEC) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto out;
    }
    int one = 1;
    setsockopt(sp[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    if (report_argi >= 0) {
        /* pidns-init learns the report fd from its argv and must inherit it */
        int n = 0;
        while (s.argv[n])
            n++;
        if (report_argi >= n || s.nkeep >= MAX_KEEP) {
            PyErr_SetString(PyExc_ValueError, "report_argi out of range");
            goto out;
        }
        char num[16];
        snprintf(num, sizeof num, "%d", sp[1]);
        free(s.argv[report_argi]);
        s.argv[report_argi] = strdup(num);
        s.keep[s.nkeep++] = sp[1];
    }
    if (join_o != Py_None) {
        PyObject *fast = PySequence_Fast(join_o, "join");
        if (!fast)
            goto out;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
        if (n > MAX_JOIN) {
            Py_DECREF(fast);
            PyErr_SetString(PyExc_ValueError, "join: too many namespaces");
            goto out;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "ii", &s.join_fd[i],
                                  &s.join_type[i])) {
                Py_DECREF(fast);
                goto out;
            }
        }
        s.njoin = (int)n;
        Py_DECREF(fast);
    }
    if ((s.uid_map = opt_str(uid_o, &k_uid)) == (const char *)-1 ||
        (s.gid_map = opt_str(gid_o, &k_gid)) == (const char *)-1 ||
        (s.hostname = opt_str(host_o, &k_host)) == (const char *)-1 ||
        (s.rootfs = opt_str(root_o, &k_root)) == (const char *)-1 ||
        (s.cwd = opt_str(cwd_o, &k_cwd)) == (const char *)-1)
        goto out;

    s.report_fd = sp[1];
    s.pdeathsig = pdeathsig;
    s.lifeline_r = lifeline[0];
    s.lifeline_w = lifeline[1];
    s.unshare_flags = unshare_flags;
    s.setgroups_deny = setgroups_deny;
    s.make_private = make_private;
    s.mount_proc = mount_proc;
    s.setsid_ = setsid_;
    s.send_pid = send_pid;
    s.stdio[0] = stdio[0];
    s.stdio[1] = stdio[1];
    s.stdio[2] = stdio[2];
    s.close_fds = close_fds;
    s.exec_fd = exec_fd;
    s.vfork2 = vfork;
    sigemptyset(&s.child_mask);

    stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto out;
    }
    if (s.njoin) {
        stack2 = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack2 == MAP_FAILED) {
            PyErr_SetFromErrno(PyExc_OSError);
            goto out;
        }
        s.stack2 = stack2;
    }

    /* Block every signal around clone so no handler of ours runs in the child
     * while it shares our memory; the child sets its own mask. (posix_spawn does
     * the same.) A user namespace cannot be entered by a process sharing its mm,
     * so joining one uses a fork-like clone for the intermediate. */
    int flags = SIGCHLD;
    if (s.njoin) {
        int joins_user = 0;
        for (int i = 0; i < s.njoin; i++)
            joins_user |= s.join_type[i] == CLONE_NEWUSER;
        if (vfork && !joins_user)
            flags |= CLONE_VM | CLONE_VFORK;
    } else {
        flags |= clone_flags;
        if (vfork)
            flags |= CLONE_VM | CLONE_VFORK;
    }
    sigset_t all, old;
    sigfillset(&all);
    pid_t pid;
    int err;
    Py_BEGIN_ALLOW_THREADS
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = clone(s.njoin ? join_child : final_child, stack + STACK_SIZE, flags, &s);
    err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    Py_END_ALLOW_THREADS
    if (pid < 0) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        goto out;
    }
    close(sp[1]);
    sp[1] = -1;

    /* Read records until EOF: every copy of the child's end is gone once the command
     * has exec'd (CLOEXEC) or its starter died. The lifeline stays open meanwhile:
     * a fork-like child checks it after arming PDEATHSIG. */
    int cmd_pid = 0, f_stage = 0, f_err = 0;
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        struct report r;
        struct iovec iov = { &r, sizeof r };
        union { char buf[CMSG_SPACE(sizeof(struct ucred))]; struct cmsghdr align; } u;
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        memset(&r, 0, sizeof r);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof u.buf;
        ssize_t n = recvmsg(sp[0], &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (r.kind == REC_ERROR && !f_stage) {
            f_stage = r.stage;
            f_err = r.err;
        } else if (r.kind == REC_PID && r.value) {
            cmd_pid = r.value; /* from the join intermediate: already in our view */
        } else if (r.kind == REC_PID) {
            /* value 0: use the credentials, i.e. the sender's own PID as the kernel
             * translated it for us (SO_PASSCRED attaches them to every record) */
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                    struct ucred cred;
                    memcpy(&cred, CMSG_DATA(c), sizeof cred);
                    cmd_pid = cred.pid;
                }
            }
        }
    }
    /* the join intermediate has done its work: reap it; the command is cmd_pid */
    int st;
    if (s.njoin) {
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        pid = cmd_pid;
    }
    /* failed before exec: the child (and any relay above it) exits; reap it, so a
     * failed spawn leaves nothing behind */
    if (f_stage && pid > 0)
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(iiii)", (int)pid, cmd_pid ? cmd_pid : (int)pid, f_stage, f_err);

out:
    for (int i = 0; i < 2; i++) {
        if (sp[i] >= 0)
            close(sp[i]);
        if (lifeline[i] >= 0)
            close(lifeline[i]);
    }
    if (stack != MAP_FAILED)
        munmap(stack, STACK_SIZE);
    if (stack2 != MAP_FAILED)
        munmap(stack2, STACK_SIZE);
    free_strv(s.argv);
    free_strv(s.paths);
    free_strv(s.envp);
    Py_XDECREF(k_uid);
    Py_XDECREF(k_gid);
    Py_XDECREF(k_host);
    Py_XDECREF(k_root);
    Py_XDECREF(k_cwd);
    return result;
}

PyDoc_STRVAR(pivot_root_doc, "pivot_root(new_root, put_old): pivot_root(2).");

static PyObject *py_pivot_root(PyObject *self, PyObject *args)
{
    PyObject *a, *b;
    if (!PyArg_ParseTuple(args, "O&O&", PyUnicode_FSConverter, &a, PyUnicode_FSConverter, &b))
        return NULL;
    long r = syscall(SYS_pivot_root, PyBytes_AS_STRING(a), PyBytes_AS_STRING(b));
    Py_DECREF(a);
    Py_DECREF(b);
    if (r != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

#ifndef SYS_clone3
#define SYS_clone3 435
#endif

struct clone_args_v2 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};

PyDoc_STRVAR(clone3_doc,
"clone3_set_tid(flags, set_tid) -> pid\n\n"
"clone3(2) with CLONE_ARGS set_tid (Linux 5.5): fork-like, the child gets the PIDs in\n"
"set_tid (innermost first) and immediately _exit(0)s; the caller must reap it.\n"
"Used to probe set_tid support and to create a process with a chosen PID.");

static PyObject *py_clone3_set_tid(PyObject *self, PyObject *args)
{
    unsigned long long flags;
    PyObject *tids_o;
    if (!PyArg_ParseTuple(args, "KO", &flags, &tids_o))
        return NULL;
    int tids_i[32], n = 0;
    if (to_ints(tids_o, tids_i, 32, &n, "set_tid") < 0)
        return NULL;
    pid_t tids[32];
    for (int i = 0; i < n; i++)
        tids[i] = tids_i[i];
    struct clone_args_v2 ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = flags;
    ca.exit_signal = SIGCHLD;
    ca.set_tid = (uint64_t)(uintptr_t)tids;
    ca.set_tid_size = (uint64_t)n;
    long pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0)
        _exit(0);
    if (pid < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(pid);
}

static PyMethodDef methods[] = {
    {"spawn", (PyCFunction)(void (*)(void))py_spawn, METH_VARARGS | METH_KEYWORDS, spawn_doc},
    {"pivot_root", py_pivot_root, METH_VARARGS, pivot_root_doc},
    {"clone3_set_tid", py_clone3_set_tid, METH_VARARGS, clone3_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "pidns._kernel._native",
    "clone straight to exec into namespaces; pivot_root; clone3 set_tid", -1, methods,
};

PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    PyModule_AddIntConstant(m, "STACK_SIZE", STACK_SIZE);
    return m;
}
