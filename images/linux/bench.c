/*
 * /init of the initramfs that `cargo os bench` boots Linux with (images/src/linux.rs).
 *
 * It mounts devtmpfs, proc and a tmpfs, loads the kernel modules listed in /modules.list
 * (the virtio block driver and what it needs), measures the rows and prints one line per row
 * on the console, in the format the host parses:
 *
 *     bench: linux.null_syscall n=1000 min=.. median=.. p99=..
 *
 * then powers the machine off. Under QEMU TCG with -icount shift=0,align=off,sleep=off the
 * TSC advances by one per retired instruction, so every figure is an instruction count.
 *
 * Every operation is a raw `syscall` instruction (no libc wrapper on the timed path), timed
 * one at a time: `rdtsc`, the operation, `rdtsc`; each row is N such samples, less the cost
 * of the empty timing loop (its fastest sample), as Axolotl's shells report theirs.
 *
 * The block rows wait for the device: meanwhile the CPU is halted, and under sleep=off QEMU
 * moves the clock on to the next timer, so an rdtsc span would count time spent waiting.
 * Those rows count the CPU time the scheduler charges to this thread and to the block layer's
 * worker threads instead (see "CPU time" in linux.rs).
 *
 * Usage (by the host tool, on the kernel command line after `--`): init [WORDS...] RUNS
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS 100000
#define DISK "/dev/vda"
#define FILE_PATH "/tmp/bench-file"
#define GROW_PATH "/tmp/bench-grow"
#define BLOCK 4096

static uint64_t samples[MAX_RUNS];
static int runs = 1000;
static int failed;

/* ---- raw system calls and the TSC ---------------------------------------------------- */

static inline long sys0(long n) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n) : "rcx", "r11", "memory");
    return r;
}

static inline long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

static inline long sys4(long n, long a, long b, long c, long d) {
    long r;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return r;
}

static inline uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return ((uint64_t)hi << 32) | lo;
}

/* The CPU time the scheduler has charged this thread, in ns: sum_exec_runtime brought up to
 * date (task_sched_runtime). Raw syscall, as every timed operation. */
static inline uint64_t cputime(void) {
    struct timespec ts;
    sys3(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, (long)&ts, 0);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- output -------------------------------------------------------------------------- */

static void say(const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    (void)!write(1, line, n);
}

static void error(const char *what) {
    say("error: linux bench: %s: %s", what, strerror(errno));
    failed = 1;
}

static void power_off(void) {
    sync();
    reboot(RB_POWER_OFF);
    /* Not reached; if it were, init's exit panics the kernel and QEMU (-no-reboot) exits. */
    _exit(1);
}

/* ---- statistics ---------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* min, median and p99 of samples[0..n), as algo::stats::summarize computes them. */
static void summarize(int n, uint64_t out[3]) {
    qsort(samples, n, sizeof samples[0], cmp_u64);
    int p99 = n * 99 / 100;
    if (p99 > n - 1)
        p99 = n - 1;
    out[0] = samples[0];
    out[1] = samples[n / 2];
    out[2] = samples[p99];
}

static void report(const char *name, int n, uint64_t base) {
    uint64_t s[3];
    summarize(n, s);
    for (int i = 0; i < 3; i++)
        s[i] = s[i] > base ? s[i] - base : 0;
    say("bench: %s n=%d min=%llu median=%llu p99=%llu", name, n, (unsigned long long)s[0],
        (unsigned long long)s[1], (unsigned long long)s[2]);
}

/* ---- the rows ------------------------------------------------------------------------ */

/* Time `op` with rdtsc: one untimed run first, then `runs` samples. Returns 0, or -1 with
 * errno set if an operation failed. */
#define TIME_TSC(op)                                                                       \
    ({                                                                                     \
        int ok_ = (op) >= 0;                                                               \
        for (int i_ = 0; ok_ && i_ < runs; i_++) {                                         \
            uint64_t t0_ = rdtsc();                                                        \
            long r_ = (op);                                                                \
            uint64_t t1_ = rdtsc();                                                        \
            if (r_ < 0) {                                                                  \
                errno = (int)-r_;                                                          \
                ok_ = 0;                                                                   \
            }                                                                              \
            samples[i_] = t1_ - t0_;                                                       \
        }                                                                                  \
        ok_ ? 0 : -1;                                                                      \
    })

/* The number of context switches since boot (`ctxt` in /proc/stat): -1 if unknown. */
static int proc_stat = -1;

static long long switches(void) {
    static char text[32768];
    if (proc_stat < 0)
        return -1;
    ssize_t n = pread(proc_stat, text, sizeof text - 1, 0);
    if (n <= 0)
        return -1;
    text[n] = 0;
    char *at = strstr(text, "\nctxt ");
    return at ? atoll(at + 6) : -1;
}

/* The block layer's worker threads on this CPU (kblockd's, of the high-priority pool: named
 * kworker/0:NH): a request this thread plugs is issued to the driver by one of them when the
 * thread goes to sleep (a write to the block device is plugged). Their /proc/PID/schedstat. */
#define MAX_HELPERS 16
static int helpers[MAX_HELPERS], n_helpers;

static void find_helpers(void) {
    char path[64], comm[64];
    for (int pid = 2; pid < 4096 && n_helpers < MAX_HELPERS; pid++) {
        snprintf(path, sizeof path, "/proc/%d/comm", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, comm, sizeof comm - 1);
        close(fd);
        comm[n > 0 ? n : 0] = 0;
        if (strncmp(comm, "kworker/0:", 10) != 0 || !strchr(comm + 10, 'H'))
            continue;
        snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0)
            helpers[n_helpers++] = fd;
    }
}

/* The CPU time the scheduler has charged to the helpers, in ns (the first field of schedstat:
 * sum_exec_runtime, up to date for a thread that is not running). */
static uint64_t helper_time(void) {
    uint64_t sum = 0;
    for (int i = 0; i < n_helpers; i++) {
        char text[128];
        ssize_t n = pread(helpers[i], text, sizeof text - 1, 0);
        if (n > 0) {
            text[n] = 0;
            sum += strtoull(text, NULL, 10);
        }
    }
    return sum;
}

/* How many times this thread has been switched to (the third field of its schedstat). */
static int self_stat = -1;

static long long runs_on_cpu(void) {
    char text[128];
    ssize_t n = self_stat < 0 ? -1 : pread(self_stat, text, sizeof text - 1, 0);
    if (n <= 0)
        return -1;
    text[n] = 0;
    char *p = text;
    strtoull(p, &p, 10);
    strtoull(p, &p, 10);
    return strtoll(p, NULL, 10);
}

/* How many samples of the last TIME_CPU row were taken again. */
static int retaken;

/* Time `op` by the CPU time charged to this thread and to the block layer's workers (see "CPU
 * time" in linux.rs), the workers' read outside the span: one untimed run first, then `runs`
 * samples. A sample whose context switches (since the last sample) are not the `expect` of
 * the operation's own path (a read: to the idle task and back; a write: to the worker, to the
 * idle task, back), or in which this thread was not switched to `sleeps` times, is taken
 * again: another task ran meanwhile, and what the sample counts depends on which (the
 * scheduler charges the switch from it to whoever it switches to), or the device answered
 * before the thread slept (the host was slow). At most runs / 4 samples are taken again;
 * then the row fails. */
#define TIME_CPU(op, expect, sleeps)                                                       \
    ({                                                                                     \
        int ok_ = (op) >= 0;                                                               \
        long long s0_ = switches(), p0_ = runs_on_cpu();                                   \
        retaken = 0;                                                                       \
        for (int i_ = 0; ok_ && i_ < runs; i_++) {                                         \
            uint64_t h0_ = helper_time();                                                  \
            uint64_t c0_ = cputime();                                                      \
            long r_ = (op);                                                                \
            uint64_t c1_ = cputime();                                                      \
            uint64_t h1_ = helper_time();                                                  \
            long long s1_ = switches(), p1_ = runs_on_cpu();                               \
            if (r_ < 0) {                                                                  \
                errno = (int)-r_;                                                          \
                ok_ = 0;                                                                   \
            }                                                                              \
            samples[i_] = (c1_ - c0_) + (h1_ - h0_);                                       \
            if (ok_ && ((s0_ >= 0 && s1_ - s0_ != (expect)) || (p0_ >= 0 && p1_ - p0_ != (sleeps)))) { \
                if (++retaken > runs / 4) {                                                \
                    errno = EAGAIN;                                                        \
                    ok_ = 0;                                                               \
                }                                                                          \
                i_--;                                                                      \
            }                                                                              \
            s0_ = s1_;                                                                     \
            p0_ = p1_;                                                                     \
        }                                                                                  \
        ok_ ? 0 : -1;                                                                      \
    })

static uint64_t tsc_base, cpu_base;

static void row_tsc(const char *name, int rc) {
    if (rc < 0)
        error(name);
    else
        report(name, runs, tsc_base);
}

static void row_cpu(const char *name, int rc) {
    if (rc < 0 && errno == EAGAIN)
        say("error: linux bench: %s: other tasks ran (or the device was early) in more than %d samples", name,
            runs / 4);
    if (rc < 0) {
        error(name);
        return;
    }
    report(name, runs, cpu_base);
    say("linux-bench: %s: CPU time of this thread and of %d block-layer worker threads", name, n_helpers);
    if (retaken)
        say("linux-bench: %s: %d samples taken again (another task ran, or the device was early)", name, retaken);
}

/* The fastest of `runs` empty spans. */
static uint64_t fastest(void) {
    uint64_t m = samples[0];
    for (int i = 1; i < runs; i++)
        if (samples[i] < m)
            m = samples[i];
    return m;
}

/* All of `n` bytes through `fd` (a pipe's read may return part of what was written). */
static long read_full(int fd, char *p, long n) {
    long done = 0;
    while (done < n) {
        long r = sys3(SYS_read, fd, (long)(p + done), n - done);
        if (r <= 0)
            return -EIO;
        done += r;
    }
    return done;
}

/* pipe_rtt: `size` bytes to the child through one pipe, the same bytes back through the other
 * (`size` at most PIPE_BUF, 4096: each write is atomic). */
static char pipe_buf[BLOCK];

static int pipe_rtt(long size) {
    int there[2], back[2];
    if (pipe(there) < 0 || pipe(back) < 0)
        return -1;
    pid_t child = fork();
    if (child < 0)
        return -1;
    if (child == 0) {
        /* Its own copy of the write end would keep it from seeing the end of the input. */
        close(there[1]);
        close(back[0]);
        while (read_full(there[0], pipe_buf, size) == size)
            if (sys3(SYS_write, back[1], (long)pipe_buf, size) != size)
                break;
        _exit(0);
    }
    memset(pipe_buf, 'x', sizeof pipe_buf);
    int rc = TIME_TSC(sys3(SYS_write, there[1], (long)pipe_buf, size) == size &&
                              read_full(back[0], pipe_buf, size) == size
                          ? 0
                          : -EIO);
    close(there[1]);
    waitpid(child, NULL, 0);
    close(there[0]);
    close(back[0]);
    close(back[1]);
    return rc;
}

/* futex_rtt: a sequence word; the timing thread makes it odd and wakes the partner, which
 * makes it even and wakes the timing thread. */
static volatile uint32_t seq;

/* FUTEX_WAIT and FUTEX_WAKE with FUTEX_PRIVATE_FLAG (linux/futex.h). */
#define FUTEX_WAIT_PRIVATE_ (0 | 128)
#define FUTEX_WAKE_PRIVATE_ (1 | 128)

static void futex_wait(volatile uint32_t *w, uint32_t v) {
    sys4(SYS_futex, (long)w, FUTEX_WAIT_PRIVATE_, v, 0);
}

static void *partner(void *arg) {
    (void)arg;
    for (uint32_t expect = 0;; expect += 2) {
        uint32_t v;
        while ((v = __atomic_load_n(&seq, __ATOMIC_ACQUIRE)) == expect)
            futex_wait(&seq, expect);
        if (v == UINT32_MAX)
            return NULL;
        __atomic_store_n(&seq, v + 1, __ATOMIC_RELEASE);
        sys3(SYS_futex, (long)&seq, FUTEX_WAKE_PRIVATE_, 1);
    }
}

static long futex_round(void) {
    uint32_t odd = __atomic_load_n(&seq, __ATOMIC_ACQUIRE) + 1;
    __atomic_store_n(&seq, odd, __ATOMIC_RELEASE);
    sys3(SYS_futex, (long)&seq, FUTEX_WAKE_PRIVATE_, 1);
    while (__atomic_load_n(&seq, __ATOMIC_ACQUIRE) == odd)
        futex_wait(&seq, odd);
    return 0;
}

static int futex_rtt(void) {
    pthread_t t;
    errno = pthread_create(&t, NULL, partner, NULL);
    if (errno)
        return -1;
    int rc = TIME_TSC(futex_round());
    __atomic_store_n(&seq, UINT32_MAX, __ATOMIC_RELEASE);
    sys3(SYS_futex, (long)&seq, FUTEX_WAKE_PRIVATE_, 1);
    pthread_join(t, NULL);
    return rc;
}

/* Files in a tmpfs: a 4 KiB file, in the page cache by construction. */
static void file_rows(void) {
    static char buf[BLOCK];
    memset(buf, 0x5a, sizeof buf);
    int fd = open(FILE_PATH, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, buf, BLOCK) != BLOCK) {
        error("create " FILE_PATH);
        return;
    }
    struct stat st;
    row_tsc("linux.pread_64", TIME_TSC(sys4(SYS_pread64, fd, (long)buf, 64, 0)));
    row_tsc("linux.write_64",
            TIME_TSC(sys3(SYS_write, fd, (long)buf, 64) < 0 ? -EIO : sys3(SYS_lseek, fd, 0, SEEK_SET)));
    row_tsc("linux.seek", TIME_TSC(sys3(SYS_lseek, fd, 0, SEEK_SET)));
    row_tsc("linux.open_close", TIME_TSC(({
                long f_ = sys3(SYS_open, (long)FILE_PATH, O_RDONLY, 0);
                f_ < 0 ? f_ : sys3(SYS_close, f_, 0, 0);
            })));
    row_tsc("linux.stat", TIME_TSC(sys3(SYS_stat, (long)FILE_PATH, (long)&st, 0)));
    close(fd);
}

/* How the cost grows with the work, beside the shells' `bench grow` rows: a pipe round trip
 * with 64 to 4,096 bytes each way; a pread of 512 B to 64 KiB from the start of a 64 KiB file
 * on tmpfs, in one call. */
static void grow_rows(void) {
    static const long payloads[] = {64, 512, 4096};
    static const char *const pipe_names[] = {"linux.pipe_payload_64", "linux.pipe_payload_512",
                                             "linux.pipe_payload_4096"};
    for (int i = 0; i < 3; i++)
        row_tsc(pipe_names[i], pipe_rtt(payloads[i]));
    static char big[65536];
    memset(big, 0x5a, sizeof big);
    int fd = open(GROW_PATH, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, big, sizeof big) != (long)sizeof big) {
        error("create " GROW_PATH);
        return;
    }
    static const long sizes[] = {512, 4096, 65536};
    static const char *const read_names[] = {"linux.pread_512", "linux.pread_4096", "linux.pread_65536"};
    for (int i = 0; i < 3; i++) {
        long n = sizes[i];
        row_tsc(read_names[i], TIME_TSC(sys4(SYS_pread64, fd, (long)big, n, 0) == n ? 0 : -EIO));
    }
    close(fd);
}

/* The raw disk: 4 KiB O_DIRECT at its last 4 KiB, read, then written back unchanged. */
static void disk_rows(void) {
    int fd = -1;
    /* devtmpfs creates the node when the driver has added the disk; give it a moment. */
    for (int i = 0; i < 200 && fd < 0; i++) {
        fd = open(DISK, O_RDWR | O_DIRECT);
        if (fd < 0 && errno == ENOENT) {
            struct timespec ms = {0, 10 * 1000 * 1000};
            nanosleep(&ms, NULL);
        } else if (fd < 0)
            break;
    }
    if (fd < 0) {
        error("open " DISK " (O_DIRECT)");
        return;
    }
    /* No I/O scheduler: with mq-deadline (the default for a disk of one queue) the request is
     * handed to a kblockd worker thread, which issues it to the driver; the thread's CPU time
     * would leave that out. Without one the request is issued to the driver from this thread's
     * system call, as Axolotl's rows count the driver's work for its caller. */
    int sched = open("/sys/block/vda/queue/scheduler", O_WRONLY);
    if (sched < 0 || write(sched, "none", 4) != 4) {
        error("set /sys/block/vda/queue/scheduler to none");
        close(fd);
        return;
    }
    close(sched);
    find_helpers();
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < BLOCK) {
        error("the size of " DISK);
        close(fd);
        return;
    }
    off_t at = (size - BLOCK) & ~(off_t)(BLOCK - 1);
    void *buf;
    if ((errno = posix_memalign(&buf, BLOCK, BLOCK)) != 0) {
        error("posix_memalign");
        close(fd);
        return;
    }
#define FULL(n) ((n) == BLOCK ? 0 : (n) < 0 ? (n) : -EIO)
    row_cpu("linux.blk_read", TIME_CPU(FULL(sys4(SYS_pread64, fd, (long)buf, BLOCK, at)), 2, 1));
    row_cpu("linux.blk_write", TIME_CPU(FULL(sys4(SYS_pwrite64, fd, (long)buf, BLOCK, at)), 3, 1));
    close(fd);
    free(buf);
}

/* Does the thread's CPU time advance by one ns per TSC tick (one per instruction)? A busy loop
 * of ~600,000 instructions with no system call, timed both ways, 20 times; the run with the
 * fewest TSC ticks (no interrupt in it) is printed, its CPU time less the CPU-time timing
 * loop. (The kernel's TSC frequency, refined against the HPET at boot, comes out as 999.999
 * or 1000.000 MHz: a ns is then one instruction to 1 ppm.) */
static void check_clock(void) {
    uint64_t best_tsc = UINT64_MAX, best_ns = 0;
    for (int k = 0; k < 20; k++) {
        uint64_t c0 = cputime(), t0 = rdtsc();
        for (volatile uint64_t i = 0; i < 100000; i++) {
        }
        uint64_t t1 = rdtsc(), c1 = cputime();
        if (t1 - t0 < best_tsc) {
            best_tsc = t1 - t0;
            best_ns = c1 - c0 - cpu_base;
        }
    }
    say("linux-bench: clock check: %llu TSC ticks, %llu ns of thread CPU time", (unsigned long long)best_tsc,
        (unsigned long long)best_ns);
}

/* ---- setup --------------------------------------------------------------------------- */

static void mounts(void) {
    if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) < 0 && errno != EBUSY)
        error("mount devtmpfs on /dev");
    if (mount("proc", "/proc", "proc", 0, NULL) < 0)
        error("mount proc on /proc");
    if (mount("sysfs", "/sys", "sysfs", 0, NULL) < 0)
        error("mount sysfs on /sys");
    if (mount("tmpfs", "/tmp", "tmpfs", 0, "size=16m") < 0)
        error("mount tmpfs on /tmp");
}

/* Load each module named in /modules.list (one path a line, in dependency order). */
static void modules(void) {
    FILE *list = fopen("/modules.list", "r");
    if (!list)
        return;
    char path[256];
    while (fgets(path, sizeof path, list)) {
        path[strcspn(path, "\n")] = 0;
        if (!*path)
            continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)) {
            char what[300];
            snprintf(what, sizeof what, "load module %s", path);
            error(what);
        }
        if (fd >= 0)
            close(fd);
    }
    fclose(list);
}

int main(int argc, char **argv) {
    /* The kernel also hands init the words of its command line it does not know (nokaslr). */
    if (argc > 1)
        runs = atoi(argv[argc - 1]);
    if (runs < 1 || runs > MAX_RUNS) {
        say("error: linux bench: runs must be 1..%d, not %s", MAX_RUNS, argc > 1 ? argv[argc - 1] : "?");
        power_off();
    }
    mounts();
    proc_stat = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    self_stat = open("/proc/self/schedstat", O_RDONLY | O_CLOEXEC);
    if (proc_stat < 0 || self_stat < 0)
        error("open /proc/stat and /proc/self/schedstat");
    modules();
    say("linux-bench: ready");

    /* The empty timing loops, as the shells' Report::start. */
    TIME_TSC(0L);
    tsc_base = fastest();
    TIME_CPU(0L, 0, 0);
    cpu_base = fastest();
    say("bench: %d runs per row; instructions per operation, less the %llu-tick timing loop "
        "(rdtsc) or the %llu-ns one (thread CPU time, block rows)",
        runs, (unsigned long long)tsc_base, (unsigned long long)cpu_base);
    check_clock();

    row_tsc("linux.null_syscall", TIME_TSC(sys0(SYS_getppid)));
    row_tsc("linux.pipe_rtt", pipe_rtt(1));
    row_tsc("linux.futex_rtt", futex_rtt());
    file_rows();
    grow_rows();
    disk_rows();

    say("linux-bench: %s", failed ? "failed" : "done");
    power_off();
    return 0;
}
