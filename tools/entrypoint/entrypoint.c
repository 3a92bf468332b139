/*
 * ktes-entrypoint: runs one TES executor inside its container, with exact TES semantics and no shell.
 *
 * Why a C program: a task's executor image may hold nothing but the user's tool (no shell, no libc even),
 * yet TES asks for stdin/stdout/stderr redirected to files, stdout and stderr kept apart, the real exit
 * code, start and end times, and executors that go on after a failure under ignore_error. Kubernetes runs
 * the executors as init containers and stops at the first non-zero exit, and reports neither times per
 * command nor separate streams. So, as Tekton does with its entrypoint, the stage-in container copies this
 * statically linked helper into a shared emptyDir and every executor runs through it. No library does this
 * job, and a static binary of a few hundred kilobytes with no dependencies is the only thing that works in
 * any image; Tekton's own entrypoint is Go and larger, and busybox would need a shell script.
 *
 * usage: entrypoint --index I --state-dir DIR [--stdin P] [--stdout P] [--stderr P] [--ignore-error] -- CMD...
 *
 * - DIR/stop exists (an earlier executor failed): exit 0 at once, write nothing, run nothing.
 * - Otherwise run CMD (PATH search as execvp) with stdin from P (default /dev/null), stdout and stderr to
 *   P (parents created) or DIR/I.stdout and DIR/I.stderr; SIGTERM and SIGINT are passed on to it.
 * - Write DIR/I.json atomically: {"index","exit_code","start_time","end_time","oom_killed","error"}
 *   (ktes.backends.kubernetes.report.ExecutorResult). exit_code is CMD's status, or 128+signal; 127 with
 *   "error" set when CMD could not be started. oom_killed: the memory cgroup's oom_kill count went up
 *   while CMD ran (cgroup v2 memory.events, or v1 memory.oom_control).
 * - A non-zero exit_code without --ignore-error creates DIR/stop, so later executors do not run.
 * - Exit 0, so the Pod goes on to the next container; exit 1 only when the helper itself cannot work
 *   (e.g. DIR is not writable), 2 on a usage error; the reason is on stderr then.
 *
 * The environment variable KTES_ENTRYPOINT_CGROUP_DIR names the memory cgroup directory to read instead of
 * /sys/fs/cgroup (tests use it to run the helper in a cgroup of their own).
 *
 * Build: gcc -static -O2 -Wall -Wextra -Werror -o ktes-entrypoint entrypoint.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ERROR_MAX 1024

static volatile sig_atomic_t child_pid = 0;
static volatile sig_atomic_t pending_signal = 0;

struct options {
    const char *index_arg;
    int index;
    const char *state_dir;
    const char *stdin_path;
    const char *stdout_path;
    const char *stderr_path;
    int ignore_error;
    char **command;
};

static void die(int code, const char *fmt, ...) {
    va_list ap;
    fputs("ktes-entrypoint: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

static void usage(const char *why) {
    die(2, "%s\nusage: entrypoint --index I --state-dir DIR [--stdin P] [--stdout P] [--stderr P] "
           "[--ignore-error] -- CMD...",
        why);
}

static void parse_args(int argc, char **argv, struct options *o) {
    memset(o, 0, sizeof *o);
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "--ignore-error") == 0) {
            o->ignore_error = 1;
            continue;
        }
        const char **slot = NULL;
        if (strcmp(a, "--index") == 0)
            slot = &o->index_arg;
        else if (strcmp(a, "--state-dir") == 0)
            slot = &o->state_dir;
        else if (strcmp(a, "--stdin") == 0)
            slot = &o->stdin_path;
        else if (strcmp(a, "--stdout") == 0)
            slot = &o->stdout_path;
        else if (strcmp(a, "--stderr") == 0)
            slot = &o->stderr_path;
        else
            usage("unknown option");
        if (i + 1 >= argc)
            usage("option needs a value");
        *slot = argv[++i];
    }
    if (!o->index_arg || !o->state_dir)
        usage("--index and --state-dir are required");
    char *end = NULL;
    errno = 0;
    long n = strtol(o->index_arg, &end, 10);
    if (errno || *o->index_arg == '\0' || *end != '\0' || n < 0 || n > 1000000)
        usage("--index must be a non-negative integer");
    o->index = (int)n;
    if (i >= argc)
        usage("no command after --");
    o->command = &argv[i];
}

/* DIR/NAME into buf, or die when it does not fit. */
static void join(char *buf, size_t size, const char *dir, const char *name) {
    if ((size_t)snprintf(buf, size, "%s/%s", dir, name) >= size)
        die(1, "path too long: %s/%s", dir, name);
}

/* RFC 3339 UTC with microseconds, e.g. 2024-05-01T12:00:00.123456Z. */
static void now_rfc3339(char *buf, size_t size) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%06ldZ", ts.tv_nsec / 1000);
}

/* The oom_kill count of the memory cgroup we run in, or -1 when it cannot be read. */
static long oom_kill_count(void) {
    const char *dir = getenv("KTES_ENTRYPOINT_CGROUP_DIR");
    char candidates[2][PATH_MAX];
    int n = 0;
    if (dir && *dir) {
        snprintf(candidates[n++], PATH_MAX, "%s/memory.events", dir);
        snprintf(candidates[n++], PATH_MAX, "%s/memory.oom_control", dir);
    } else {
        snprintf(candidates[n++], PATH_MAX, "/sys/fs/cgroup/memory.events");            /* v2 */
        snprintf(candidates[n++], PATH_MAX, "/sys/fs/cgroup/memory/memory.oom_control"); /* v1 */
    }
    for (int i = 0; i < n; i++) {
        FILE *f = fopen(candidates[i], "re");
        if (!f)
            continue;
        char line[256];
        long count = -1;
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "oom_kill ", 9) == 0) {
                count = strtol(line + 9, NULL, 10);
                break;
            }
        }
        fclose(f);
        if (count >= 0)
            return count;
    }
    return -1;
}

/* mkdir -p of the directory part of path. Errors surface when the file itself is opened. */
static void make_parents(const char *path) {
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return;
        *p = '/';
    }
}

/* Opens the three files for CMD. On failure, a sentence in err and -1. */
static int open_stdio(const struct options *o, int fds[3], char *err, size_t errsize) {
    char out_default[PATH_MAX], err_default[PATH_MAX];
    char name[64];
    snprintf(name, sizeof name, "%d.stdout", o->index);
    join(out_default, sizeof out_default, o->state_dir, name);
    snprintf(name, sizeof name, "%d.stderr", o->index);
    join(err_default, sizeof err_default, o->state_dir, name);

    const char *in = o->stdin_path ? o->stdin_path : "/dev/null";
    const char *paths[3] = {in, o->stdout_path ? o->stdout_path : out_default,
                            o->stderr_path ? o->stderr_path : err_default};
    const char *what[3] = {"stdin", "stdout", "stderr"};
    for (int i = 0; i < 3; i++) {
        if (i == 2 && strcmp(paths[2], paths[1]) == 0) { /* one file for both: one offset, as with 2>&1 */
            fds[2] = fcntl(fds[1], F_DUPFD_CLOEXEC, 0);
            if (fds[2] >= 0)
                continue;
        }
        if (i > 0)
            make_parents(paths[i]);
        int flags = i == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC;
        fds[i] = open(paths[i], flags | O_CLOEXEC, 0666);
        if (fds[i] < 0) {
            snprintf(err, errsize, "cannot open %s file %s: %s", what[i], paths[i], strerror(errno));
            for (int j = 0; j < i; j++)
                close(fds[j]);
            return -1;
        }
    }
    return 0;
}

static void forward_signal(int sig) {
    if (child_pid > 0)
        kill(child_pid, sig);
    else
        pending_signal = sig;
}

/* Runs CMD; returns its exit code (128+signal when killed); err gets a sentence when it could not start. */
static int run(const struct options *o, char *err, size_t errsize) {
    int fds[3];
    if (open_stdio(o, fds, err, errsize) != 0)
        return 127;

    /* The child tells us through this close-on-exec pipe why execvp failed; EOF means it succeeded. */
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0)
        die(1, "pipe: %s", strerror(errno));

    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    pid_t pid = fork();
    if (pid < 0)
        die(1, "fork: %s", strerror(errno));
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        close(report[0]);
        for (int i = 0; i < 3; i++) {
            if (dup2(fds[i], i) < 0)
                _exit(127);
        }
        execvp(o->command[0], o->command);
        int e = errno;
        char msg[ERROR_MAX];
        int len = snprintf(msg, sizeof msg, "exec %s: %s", o->command[0], strerror(e));
        if (len > (int)sizeof msg - 1)
            len = (int)sizeof msg - 1;
        if (write(report[1], msg, (size_t)len) < 0) { /* nothing more to do: the exit code says it */
        }
        dprintf(2, "ktes-entrypoint: %s\n", msg);
        _exit(127);
    }
    child_pid = pid;
    int pending = pending_signal;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pending)
        kill(pid, pending);
    close(report[1]);
    for (int i = 0; i < 3; i++)
        close(fds[i]);

    size_t got = 0;
    for (;;) {
        ssize_t r = read(report[0], err + got, errsize - 1 - got);
        if (r > 0 && got + (size_t)r < errsize - 1) {
            got += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r > 0)
            got += (size_t)r;
        break;
    }
    err[got] = '\0';
    close(report[0]);

    /* As PID 1 of the container we also reap orphans that CMD leaves behind. */
    int status = 0;
    for (;;) {
        pid_t done = waitpid(-1, &status, 0);
        if (done == pid)
            break;
        if (done < 0 && errno != EINTR)
            die(1, "waitpid: %s", strerror(errno));
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

/* s as a JSON string body: escapes quotes, backslashes and controls; invalid UTF-8 becomes U+FFFD. */
static void json_string(FILE *f, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
            p++;
        } else if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            fputc(c, f);
            p++;
        } else {
            int len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
            int ok = len > 0;
            for (int i = 1; ok && i < len; i++)
                ok = (p[i] & 0xC0) == 0x80;
            if (ok) {
                fwrite(p, 1, (size_t)len, f);
                p += len;
            } else {
                fputs("\\ufffd", f);
                p++;
            }
        }
    }
    fputc('"', f);
}

static void write_result(const struct options *o, int exit_code, const char *start, const char *end, int oom,
                         const char *error) {
    char tmp[PATH_MAX], final[PATH_MAX], name[64];
    snprintf(name, sizeof name, ".%d.json.tmp", o->index);
    join(tmp, sizeof tmp, o->state_dir, name);
    snprintf(name, sizeof name, "%d.json", o->index);
    join(final, sizeof final, o->state_dir, name);

    FILE *f = fopen(tmp, "we");
    if (!f)
        die(1, "cannot write %s: %s", tmp, strerror(errno));
    fprintf(f, "{\"index\":%d,\"exit_code\":%d,\"start_time\":\"%s\",\"end_time\":\"%s\",\"oom_killed\":%s,",
            o->index, exit_code, start, end, oom ? "true" : "false");
    fputs("\"error\":", f);
    if (error && *error)
        json_string(f, error);
    else
        fputs("null", f);
    fputs("}\n", f);
    if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
        int e = errno;
        fclose(f);
        die(1, "cannot write %s: %s", tmp, strerror(e));
    }
    fclose(f);
    chmod(tmp, 0644);
    if (rename(tmp, final) != 0)
        die(1, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
}

static void write_stop(const struct options *o) {
    char path[PATH_MAX];
    join(path, sizeof path, o->state_dir, "stop");
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        die(1, "cannot create %s: %s", path, strerror(errno));
    dprintf(fd, "%d\n", o->index);
    close(fd);
}

int main(int argc, char **argv) {
    struct options o;
    parse_args(argc, argv, &o);

    char stop[PATH_MAX];
    join(stop, sizeof stop, o.state_dir, "stop");
    if (access(stop, F_OK) == 0)
        return 0;

    char start[64], end[64], err[ERROR_MAX];
    err[0] = '\0';
    long oom_before = oom_kill_count();
    now_rfc3339(start, sizeof start);
    int code = run(&o, err, sizeof err);
    now_rfc3339(end, sizeof end);
    long oom_after = oom_kill_count();
    int oom = oom_before >= 0 && oom_after > oom_before;

    if (err[0])
        fprintf(stderr, "ktes-entrypoint: %s\n", err);
    write_result(&o, code, start, end, oom, err);
    if (code != 0 && !o.ignore_error)
        write_stop(&o);
    return 0;
}
