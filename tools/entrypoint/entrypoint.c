/*
 * ktes-entrypoint: runs one TES executor inside its container, with exact TES semantics and no shell.
 *
 * Why a C program: a task's executor image may hold nothing but the user's tool (no shell, no libc even),
 * yet TES asks for stdin/stdout/stderr redirected to files, stdout and stderr kept apart, the real exit
 * code, start and end times, executors that run one after the other, and executors that go on after a
 * failure under ignore_error. All containers of a task Pod start together (init containers would cost the
 * kubelet's ~1 s status relist per container), so this helper also keeps the order: it waits for the
 * files that say the previous step is done. It reaches the executor container through a ConfigMap
 * mounted read-only (so it must stay under 1 MiB: ~850 KB static and stripped). No library does this
 * job, and a static binary with no dependencies is the only thing that works in any image; Tekton's own
 * entrypoint is Go and larger, and busybox would need a shell script.
 *
 * usage: entrypoint --index I --state-dir DIR [--wait NAME]... [--stdin P] [--stdout P] [--stderr P]
 *                   [--ignore-error] [--tail-bytes N] [--termination-log P [--termination-limit N]] -- CMD...
 *
 * - Wait (polling every 10 ms) until every DIR/NAME given with --wait exists. While waiting, or then:
 *   DIR/stop (an earlier executor failed) or DIR/stage-in.failed exists: exit 0 at once, write nothing,
 *   run nothing. SIGTERM/SIGINT while waiting end the helper (128+signal).
 * - Otherwise run CMD (PATH search as execvp) with stdin from P (default /dev/null), stdout and stderr to
 *   P (parents created) or DIR/I.stdout and DIR/I.stderr; SIGTERM and SIGINT are passed on to it.
 * - A non-zero exit_code without --ignore-error creates DIR/stop (before the result file, so whoever
 *   sees the result file also sees the stop), so later executors do not run.
 * - Write DIR/I.json atomically: {"index","exit_code","start_time","end_time","oom_killed","error"}
 *   (ktes.backends.kubernetes.report.ExecutorResult). exit_code is CMD's status, or 128+signal; 127 with
 *   "error" set when CMD could not be started. oom_killed: the memory cgroup's oom_kill count went up
 *   while CMD ran (cgroup v2 memory.events, or v1 memory.oom_control).
 * - Print the same JSON plus "stdout" and "stderr" (the last N bytes of each file, default 65536; invalid
 *   UTF-8 becomes U+FFFD) as the last line of its own stdout: "KTES-RESULT {...}" (report.RESULT_MARKER).
 *   The engine reads it from the container's log, or from the termination message (below).
 * - With --termination-log P (the container's terminationMessagePath): once CMD has ended, after the
 *   readers below, write that same line to P, truncating it, when it is at most N bytes (--termination-limit,
 *   default 4096: what the kubelet keeps); when it is longer, truncate P to nothing, so the engine reads
 *   the log instead. CMD runs in this container and may have written P itself: as PID 1 of the container
 *   the helper first kills (SIGKILL) and reaps every process left in it, so nothing CMD started can write
 *   after the helper. P is opened only if it exists (the kubelet makes it), never created.
 * - Exit 0; exit 1 only when the helper itself cannot work (e.g. DIR is not writable), 2 on a usage
 *   error; the reason is on stderr then.
 *
 * While CMD runs, the helper keeps its stdout and stderr files open at descriptors 20 and 21 (close-on-exec, so
 * CMD does not inherit them), and at the end, after the result line, it waits (at most 5 s) for the readers
 * below to finish, so a reader never loses the last bytes to the container's end.
 *
 * reader: entrypoint --read stdout|stderr --index I --state-dir DIR [--offset N] [--follow] [--pid P]
 *
 * - Copies the executor's own stream from byte N (default 0) to its stdout: the file the helper (process P,
 *   default 1: the container's first process) holds open at descriptor 20 or 21, reopened through
 *   /proc/P/fd, so whatever CMD did to the path (a link, a rename) the bytes are those CMD was given.
 *   Without --follow it stops at the current end; with it, it goes on until the executor has ended
 *   (DIR/I.json exists) and everything before that is copied. Used by ktes through the Kubernetes exec API
 *   for live output; it opens nothing else, writes nothing but DIR/.I.readers (the lock it holds while
 *   it reads) and changes nothing.
 * - With --follow it first waits for the executor to start (its helper waits for its turn).
 * - Exit 0: copied to the end (with --follow: to the executor's end). 3: nothing to read (the executor has
 *   not started, or will not: the run is over; or its file could not be opened). 4: the executor's helper
 *   is leaving (its result line holds the output) or the stream is not a regular file. 1: error (on
 *   stderr); 2: usage error.
 *
 * --version prints "ktes-entrypoint SHA256" (the sha256 of the entrypoint.c it was built from, given at build
 * time as KTES_SOURCE_SHA256), so a test can prove that the binaries shipped in the ktes package were built
 * from the committed source.
 *
 * The environment variable KTES_ENTRYPOINT_CGROUP_DIR names the memory cgroup directory to read instead of
 * /sys/fs/cgroup (tests use it to run the helper in a cgroup of their own).
 *
 * Build: tools/entrypoint/build (every architecture ktes ships, into src/ktes/run/bin/), or make.
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
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ERROR_MAX 1024
#define WAIT_MAX 16
#define POLL_NANOS 10000000L
#define RESULT_MARKER "KTES-RESULT "
/* Where the helper keeps the executor's stdout and stderr files open for readers (see --read). */
#define KEEP_STDOUT_FD 20
#define KEEP_STDERR_FD 21
#define READER_POLL_NANOS 100000000L
#define READERS_WAIT_SECONDS 5
#define READ_CHUNK 65536
#ifndef KTES_SOURCE_SHA256
#define KTES_SOURCE_SHA256 "unknown"
#endif

static int write_all(int fd, const char *buf, size_t len);

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
    long tail_bytes;
    const char *termination_log;
    long termination_limit;
    const char *waits[WAIT_MAX];
    int n_waits;
    char **command;
};

__attribute__((noreturn, format(printf, 2, 3))) static void die(int code, const char *fmt, ...) {
    va_list ap;
    fputs("ktes-entrypoint: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

static void usage(const char *why) {
    die(2, "%s\nusage: entrypoint --index I --state-dir DIR [--wait NAME]... [--stdin P] [--stdout P] "
           "[--stderr P] [--ignore-error] [--tail-bytes N] [--termination-log P [--termination-limit N]] -- CMD...",
        why);
}

static void parse_args(int argc, char **argv, struct options *o) {
    memset(o, 0, sizeof *o);
    o->tail_bytes = 65536;
    o->termination_limit = 4096;
    const char *tail_arg = NULL, *limit_arg = NULL;
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
        const char *wait_name = NULL;
        if (strcmp(a, "--wait") == 0) {
            if (o->n_waits >= WAIT_MAX)
                usage("too many --wait");
            slot = &wait_name;
        } else if (strcmp(a, "--tail-bytes") == 0)
            slot = &tail_arg;
        else if (strcmp(a, "--termination-log") == 0)
            slot = &o->termination_log;
        else if (strcmp(a, "--termination-limit") == 0)
            slot = &limit_arg;
        else if (strcmp(a, "--index") == 0)
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
        if (wait_name) {
            if (!*wait_name || strchr(wait_name, '/'))
                usage("--wait takes a file name in the state directory");
            o->waits[o->n_waits++] = wait_name;
        }
    }
    if (!o->index_arg || !o->state_dir)
        usage("--index and --state-dir are required");
    char *end = NULL;
    errno = 0;
    long n = strtol(o->index_arg, &end, 10);
    if (errno || *o->index_arg == '\0' || *end != '\0' || n < 0 || n > 1000000)
        usage("--index must be a non-negative integer");
    o->index = (int)n;
    if (tail_arg) {
        errno = 0;
        long t = strtol(tail_arg, &end, 10);
        if (errno || *tail_arg == '\0' || *end != '\0' || t < 0 || t > 64L * 1024 * 1024)
            usage("--tail-bytes must be a non-negative integer");
        o->tail_bytes = t;
    }
    if (limit_arg) {
        errno = 0;
        long t = strtol(limit_arg, &end, 10);
        if (errno || *limit_arg == '\0' || *end != '\0' || t < 0 || t > 1024L * 1024)
            usage("--termination-limit must be a non-negative integer");
        o->termination_limit = t;
    }
    if (o->termination_log && !*o->termination_log)
        usage("--termination-log takes a path");
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
    /* For readers (--read): copies of the files CMD writes to, put at fixed descriptors once CMD runs. */
    int kept[2];
    for (int i = 0; i < 2; i++)
        kept[i] = fcntl(fds[i + 1], F_DUPFD_CLOEXEC, KEEP_STDERR_FD + 1);

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
    /* Now nothing of ours can sit at the fixed descriptors (the copies are above them). */
    int keep_at[2] = {KEEP_STDOUT_FD, KEEP_STDERR_FD};
    for (int i = 0; i < 2; i++) {
        if (kept[i] >= 0) {
            dup3(kept[i], keep_at[i], O_CLOEXEC);
            close(kept[i]);
        }
    }

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

/* len bytes at s as a JSON string: escapes quotes, backslashes and controls (NUL too); invalid UTF-8
 * becomes U+FFFD, one per byte that starts no valid sequence. */
static void json_bytes(FILE *f, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s, *stop = p + len;
    fputc('"', f);
    while (p < stop) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            fputc(c, f);
            p++;
        } else {
            size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
            int ok = n > 0 && (size_t)(stop - p) >= n;
            for (size_t i = 1; ok && i < n; i++)
                ok = (p[i] & 0xC0) == 0x80;
            if (ok && n == 3) /* no overlong forms, no surrogates */
                ok = !(c == 0xE0 && p[1] < 0xA0) && !(c == 0xED && p[1] >= 0xA0);
            if (ok && n == 4)
                ok = !(c == 0xF0 && p[1] < 0x90) && !(c == 0xF4 && p[1] >= 0x90);
            if (ok) {
                fwrite(p, 1, n, f);
                p += n;
            } else {
                fputs("\\ufffd", f);
                p++;
            }
        }
    }
    fputc('"', f);
}

static void json_string(FILE *f, const char *s) { json_bytes(f, s, strlen(s)); }

struct result {
    int exit_code;
    char start[64], end[64];
    int oom;
    const char *error;
};

static void print_fields(FILE *f, const struct options *o, const struct result *r) {
    fprintf(f, "{\"index\":%d,\"exit_code\":%d,\"start_time\":\"%s\",\"end_time\":\"%s\",\"oom_killed\":%s,",
            o->index, r->exit_code, r->start, r->end, r->oom ? "true" : "false");
    fputs("\"error\":", f);
    if (r->error && *r->error)
        json_string(f, r->error);
    else
        fputs("null", f);
}

static void write_result(const struct options *o, const struct result *r) {
    char tmp[PATH_MAX], final[PATH_MAX], name[64];
    snprintf(name, sizeof name, ".%d.json.tmp", o->index);
    join(tmp, sizeof tmp, o->state_dir, name);
    snprintf(name, sizeof name, "%d.json", o->index);
    join(final, sizeof final, o->state_dir, name);

    FILE *f = fopen(tmp, "we");
    if (!f)
        die(1, "cannot write %s: %s", tmp, strerror(errno));
    print_fields(f, o, r);
    fputs("}\n", f);
    if (fflush(f) != 0 || ferror(f)) {
        int e = errno;
        fclose(f);
        die(1, "cannot write %s: %s", tmp, strerror(e));
    }
    fclose(f);
    chmod(tmp, 0644);
    if (rename(tmp, final) != 0)
        die(1, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
}

/* The last `limit` bytes of the file at path as a JSON string ("" when missing or unreadable). A cut that
 * falls inside a UTF-8 sequence drops its continuation bytes. */
static void json_tail(FILE *f, const char *path, long limit) {
    char *buf = NULL;
    size_t got = 0;
    int fd = limit > 0 ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) : -1;
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        off_t start = st.st_size > limit ? st.st_size - limit : 0;
        size_t want = (size_t)(st.st_size - start);
        buf = malloc(want + 1);
        while (buf && got < want) {
            ssize_t r = pread(fd, buf + got, want - got, start + (off_t)got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        size_t skip = 0;
        if (start > 0)
            while (skip < 3 && skip < got && ((unsigned char)buf[skip] & 0xC0) == 0x80)
                skip++;
        json_bytes(f, buf ? buf + skip : "", got - skip);
    } else {
        fputs("\"\"", f);
    }
    free(buf);
    if (fd >= 0)
        close(fd);
}

/* The result and the tails of the command's output: "KTES-RESULT {...}\n", in f. */
static void format_result(FILE *f, const struct options *o, const struct result *r) {
    char out_default[PATH_MAX], err_default[PATH_MAX], name[64];
    snprintf(name, sizeof name, "%d.stdout", o->index);
    join(out_default, sizeof out_default, o->state_dir, name);
    snprintf(name, sizeof name, "%d.stderr", o->index);
    join(err_default, sizeof err_default, o->state_dir, name);
    fputs(RESULT_MARKER, f);
    print_fields(f, o, r);
    fputs(",\"stdout\":", f);
    json_tail(f, o->stdout_path ? o->stdout_path : out_default, o->tail_bytes);
    fputs(",\"stderr\":", f);
    json_tail(f, o->stderr_path ? o->stderr_path : err_default, o->tail_bytes);
    fputs("}\n", f);
}

/* The result line, printed as the last line of the helper's stdout; returned (malloc'd, *len bytes) for the
 * termination message, or NULL when it could not be kept in memory (then it is printed all the same). */
static char *print_result(const struct options *o, const struct result *r, size_t *len) {
    char *line = NULL;
    *len = 0;
    FILE *mem = open_memstream(&line, len);
    fflush(stderr);
    if (mem) {
        format_result(mem, o, r);
        if (fclose(mem) == 0 && line) {
            fwrite(line, 1, *len, stdout);
            fflush(stdout);
            return line;
        }
        free(line);
    }
    *len = 0;
    format_result(stdout, o, r);
    fflush(stdout);
    return NULL;
}

/* As PID 1 of the container: SIGKILL every other process in it (what CMD left running) and reap them, so
 * none can write the termination message after the helper. Processes entered through the exec API are not
 * our children and cannot be reaped; they are killed all the same (only ktes's readers come that way, and
 * they are done by now). Not PID 1 (a shared process namespace, or no container at all): nothing to do,
 * kill(-1) would reach far more than the task's own processes. */
static void end_leftovers(void) {
    if (getpid() != 1)
        return;
    kill(-1, SIGKILL);
    for (;;) {
        pid_t done = waitpid(-1, NULL, 0);
        if (done < 0 && errno == EINTR)
            continue;
        if (done < 0)
            break;
    }
}

/* The termination message: the result line when it fits in the limit, else nothing (the engine then reads
 * the log). Truncating in both cases, so nothing CMD wrote there is left. Best effort: the log has it all. */
static void write_termination_message(const struct options *o, const char *line, size_t len) {
    int fd = open(o->termination_log, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && line && len <= (size_t)o->termination_limit)
        write_all(fd, line, len);
    close(fd);
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

/* Whether DIR/name exists. */
static int exists_in(const char *dir, const char *name) {
    char path[PATH_MAX];
    join(path, sizeof path, dir, name);
    return access(path, F_OK) == 0;
}

/* The run is over before this executor: an earlier one failed, or the inputs could not be staged. */
static int run_is_over(const struct options *o) {
    return exists_in(o->state_dir, "stop") || exists_in(o->state_dir, "stage-in.failed");
}

/* DIR/.I.readers: readers hold it shared while they read; the helper takes it exclusively at its end. */
static int open_readers_lock(const char *dir, int index) {
    char path[PATH_MAX], name[64];
    snprintf(name, sizeof name, ".%d.readers", index);
    join(path, sizeof path, dir, name);
    return open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666);
}

/* After the result line: let readers copy the last bytes before the container ends (at most
 * READERS_WAIT_SECONDS, so a reader that is stuck cannot hold the task). The lock is kept until exit, so a
 * reader that comes later finds it taken and leaves at once. */
static void wait_for_readers(const struct options *o) {
    int fd = open_readers_lock(o->state_dir, o->index);
    if (fd < 0)
        return;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR)
            return;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= READERS_WAIT_SECONDS)
            return;
        struct timespec pause = {0, POLL_NANOS};
        nanosleep(&pause, NULL);
    }
}

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

__attribute__((noreturn)) static void read_usage(const char *why) {
    die(2, "%s\nusage: entrypoint --read stdout|stderr --index I --state-dir DIR [--offset N] [--follow] [--pid P]",
        why);
}

static long number_arg(const char *text, long max, const char *what) {
    char *end = NULL;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno || *text == '\0' || *end != '\0' || n < 0 || n > max)
        read_usage(what);
    return n;
}

/* --read: copy the executor's own stream to stdout (see the top of this file). */
static int read_stream(int argc, char **argv) {
    const char *stream = NULL, *dir = NULL;
    long index = -1, offset = 0, pid = 1;
    int follow = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--follow") == 0) {
            follow = 1;
            continue;
        }
        if (i + 1 >= argc)
            read_usage("option needs a value");
        const char *v = argv[++i];
        if (strcmp(a, "--read") == 0)
            stream = v;
        else if (strcmp(a, "--state-dir") == 0)
            dir = v;
        else if (strcmp(a, "--index") == 0)
            index = number_arg(v, 1000000, "--index must be a non-negative integer");
        else if (strcmp(a, "--offset") == 0)
            offset = number_arg(v, LONG_MAX, "--offset must be a non-negative integer");
        else if (strcmp(a, "--pid") == 0)
            pid = number_arg(v, INT_MAX, "--pid must be a process id");
        else
            read_usage("unknown option");
    }
    if (!stream || !dir || index < 0)
        read_usage("--read, --index and --state-dir are required");
    int keep;
    if (strcmp(stream, "stdout") == 0)
        keep = KEEP_STDOUT_FD;
    else if (strcmp(stream, "stderr") == 0)
        keep = KEEP_STDERR_FD;
    else
        read_usage("--read takes stdout or stderr");

    int lock = open_readers_lock(dir, (int)index);
    if (lock < 0)
        die(1, "cannot open the readers' lock in %s: %s", dir, strerror(errno));
    if (flock(lock, LOCK_SH | LOCK_NB) != 0)
        return 4; /* the helper is leaving: its result line holds the output */

    char path[64], name[64], proc[64];
    snprintf(path, sizeof path, "/proc/%ld/fd/%d", pid, keep);
    snprintf(proc, sizeof proc, "/proc/%ld", pid);
    snprintf(name, sizeof name, "%ld.json", index);
    int fd;
    /* Following, wait for the executor to start (its helper waits for its turn), unless the run is over. */
    while ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0) {
        if (!follow || access(proc, F_OK) != 0 || exists_in(dir, name) || exists_in(dir, "stop") ||
            exists_in(dir, "stage-in.failed"))
            return 3; /* not started (or the file could not be opened) */
        struct timespec pause = {0, READER_POLL_NANOS};
        nanosleep(&pause, NULL);
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return 4;
    signal(SIGPIPE, SIG_DFL);
    static char buf[READ_CHUNK];
    off_t position = (off_t)offset;
    for (;;) {
        int ended = follow && exists_in(dir, name); /* looked at first: bytes written before it are read */
        ssize_t n = pread(fd, buf, sizeof buf, position);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die(1, "reading %s: %s", path, strerror(errno));
        if (n > 0) {
            if (write_all(1, buf, (size_t)n) != 0)
                return 1;
            position += n;
            continue;
        }
        if (!follow || ended)
            return 0;
        struct timespec pause = {0, READER_POLL_NANOS};
        nanosleep(&pause, NULL);
    }
}

static void exit_on_signal(int sig) { _exit(128 + sig); }

/* Waits for every --wait file; returns 0 when they are all there, -1 when the run is over. */
static int wait_turn(const struct options *o) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = exit_on_signal; /* as PID 1 of a container we would ignore SIGTERM otherwise */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    for (int i = 0; i < o->n_waits;) {
        if (run_is_over(o))
            return -1;
        if (exists_in(o->state_dir, o->waits[i])) {
            i++;
            continue;
        }
        struct timespec pause = {0, POLL_NANOS};
        nanosleep(&pause, NULL);
    }
    return run_is_over(o) ? -1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        puts("ktes-entrypoint " KTES_SOURCE_SHA256);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--read") == 0)
        return read_stream(argc, argv);
    struct options o;
    parse_args(argc, argv, &o);

    if (wait_turn(&o) != 0)
        return 0;

    struct result r;
    char err[ERROR_MAX];
    err[0] = '\0';
    long oom_before = oom_kill_count();
    now_rfc3339(r.start, sizeof r.start);
    r.exit_code = run(&o, err, sizeof err);
    now_rfc3339(r.end, sizeof r.end);
    long oom_after = oom_kill_count();
    r.oom = oom_before >= 0 && oom_after > oom_before;
    r.error = err;

    if (err[0])
        fprintf(stderr, "ktes-entrypoint: %s\n", err);
    if (r.exit_code != 0 && !o.ignore_error)
        write_stop(&o);
    write_result(&o, &r);
    size_t len = 0;
    char *line = print_result(&o, &r, &len);
    wait_for_readers(&o);
    if (o.termination_log) {
        end_leftovers();
        write_termination_message(&o, line, len);
    }
    free(line);
    return 0;
}
