// minify's in-container sensor (Rust half: src/sense/ptrace.rs).
//
// Usage: sensor [-o LOG] -- PROGRAM [ARGS...]
//
// minify uploads this static binary into the created container through the Docker archive API
// and makes it the entrypoint, with the image's original entrypoint + cmd as PROGRAM ARGS.
// Docker has already applied the image's USER, WORKDIR and Env, so the wrapper starts PROGRAM
// as is (no NSS lookups: this binary is static and must not touch /etc/nsswitch.conf) and
// traces it and every descendant with ptrace, the way the eBPF sensor traces the cgroup:
// open, exec, stat family, access, readlink and other path lookups, with relative paths
// resolved through /proc/PID/cwd and /proc/PID/fd/N while the tracee is stopped, plus the
// number of every syscall made (for the seccomp profile).
//
// Findings go to LOG (default /.minify-sensor/trace.log) as one line per distinct
// (kind, result, path), written with write(2) as they are found, so a SIGKILL after Docker's
// stop timeout keeps everything seen so far. Line format (fields separated by tabs, text
// fields escaped: backslash, tab, newline and bytes < 0x20 or 0x7f as \ooo octal):
//   minify-ptrace 1                        header
//   <kind> <result> <pid> <comm> <path>   kind: o open, e exec, s stat, a access, r readlink, l lookup
//   n <nr>                                 first use of x86_64 syscall number nr
//   u <count>                              paths that could not be read or resolved (at exit)
//   x <code>                               the app's exit code (at exit)
//
// As PID 1 of the container it forwards SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2 and
// SIGWINCH to the app, reaps orphans (waitpid(-1)), and exits with the app's exit code (128 +
// signal number if the app was killed). PTRACE_O_EXITKILL takes the tracees down if the
// wrapper dies.
//
// What the app sees differently (unavoidable with ptrace): it is not PID 1 (the wrapper is);
// /proc/self/status shows a TracerPid; set-user-ID and file-capability binaries run without
// their extra privileges (the kernel ignores them under ptrace without CAP_SYS_PTRACE); a
// SIGSTOP/SIGTSTP group stop does not keep the app stopped; syscalls are slower; the
// directory /.minify-sensor exists.
//
// What it cannot see: the paths of a process that changed its uid (setuid from root, like nginx
// workers) while it is not dumpable. Without CAP_SYS_PTRACE the kernel refuses to read such a
// process's memory (process_vm_readv, /proc/PID/mem, PTRACE_PEEKDATA: EIO). nginx makes its
// workers dumpable again right after setuid; the few lookups in between are counted as
// unresolved ("u" line). Syscall numbers are recorded for every process regardless.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "minify_abi.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif
#define AT_FDCWD_ARG (-100)
#define AT_EMPTY_PATH_FLAG 0x1000
#define MAX_SYSCALL 1024

// Kinds as in minify_abi.h (KIND_CHAR is indexed by them); K_NONE: not a path syscall.
enum kind {
	K_OPEN = KIND_OPEN,
	K_EXEC = KIND_EXEC,
	K_STAT = KIND_STAT,
	K_ACCESS = KIND_ACCESS,
	K_READLINK = KIND_READLINK,
	K_LOOKUP = KIND_LOOKUP,
	K_NONE
};
static const char KIND_CHAR[] = "oesarl";

// Per-thread state. `pending` holds a path syscall between its entry and exit stops.
struct thread {
	pid_t tid;
	int awaiting_first_stop;
	int pending_kind; // K_NONE when nothing is pending
	char pending_path[PATH_MAX * 2];
	struct thread *next;
};

#define BUCKETS 4096
static struct thread *threads[BUCKETS];

static int log_fd = -1;
static volatile pid_t app_pid = 0;
static unsigned long unresolved = 0;
static unsigned char syscall_seen[MAX_SYSCALL];

// Set of 64-bit hashes of reported (kind, result, path) triples.
static uint64_t *seen_set;
static size_t seen_cap, seen_len;

static struct thread *find_thread(pid_t tid)
{
	for (struct thread *t = threads[(unsigned)tid % BUCKETS]; t; t = t->next)
		if (t->tid == tid)
			return t;
	return NULL;
}

static struct thread *get_thread(pid_t tid)
{
	struct thread *t = find_thread(tid);
	if (t)
		return t;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->tid = tid;
	// A thread we have not heard of yet is a new tracee: its first stop is the SIGSTOP the
	// kernel sends auto-attached children (it may arrive before the parent's fork event).
	t->awaiting_first_stop = 1;
	t->pending_kind = K_NONE;
	t->next = threads[(unsigned)tid % BUCKETS];
	threads[(unsigned)tid % BUCKETS] = t;
	return t;
}

static void drop_thread(pid_t tid)
{
	struct thread **link = &threads[(unsigned)tid % BUCKETS];
	while (*link) {
		if ((*link)->tid == tid) {
			struct thread *gone = *link;
			*link = gone->next;
			free(gone);
			return;
		}
		link = &(*link)->next;
	}
}

static void write_all(const char *buf, size_t len)
{
	if (log_fd < 0)
		return;
	while (len > 0) {
		ssize_t n = write(log_fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return; // a full disk must not take the app down
		}
		buf += n;
		len -= (size_t)n;
	}
}

// Appends `src` escaped to `out` (capacity `cap`, which must leave room for 4 bytes per byte).
static size_t escape(char *out, size_t cap, const char *src, size_t used)
{
	for (const unsigned char *p = (const unsigned char *)src; *p && used + 5 < cap; p++) {
		if (*p == '\\' || *p < 0x20 || *p == 0x7f) {
			used += (size_t)snprintf(out + used, cap - used, "\\%03o", *p);
		} else {
			out[used++] = (char)*p;
		}
	}
	out[used] = 0;
	return used;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

// Returns 1 if `h` was not in the set (and adds it).
static int seen_insert(uint64_t h)
{
	if (h == 0)
		h = 1; // 0 marks empty slots
	if (seen_len * 2 >= seen_cap) {
		size_t cap = seen_cap ? seen_cap * 2 : 4096;
		uint64_t *grown = calloc(cap, sizeof(uint64_t));
		if (!grown)
			return 1; // report duplicates rather than lose events
		for (size_t i = 0; i < seen_cap; i++) {
			if (!seen_set[i])
				continue;
			size_t j = seen_set[i] & (cap - 1);
			while (grown[j])
				j = (j + 1) & (cap - 1);
			grown[j] = seen_set[i];
		}
		free(seen_set);
		seen_set = grown;
		seen_cap = cap;
	}
	size_t i = h & (seen_cap - 1);
	while (seen_set[i]) {
		if (seen_set[i] == h)
			return 0;
		i = (i + 1) & (seen_cap - 1);
	}
	seen_set[i] = h;
	seen_len++;
	return 1;
}

static void read_comm(pid_t tid, char *comm, size_t cap)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/%d/comm", tid);
	comm[0] = 0;
	int fd = open(proc, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, comm, cap - 1);
	close(fd);
	if (n <= 0)
		return;
	comm[n] = 0;
	char *nl = strchr(comm, '\n');
	if (nl)
		*nl = 0;
}

static void report(pid_t tid, int kind, long long result, const char *path)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	h = fnv1a(h, &kind, sizeof(kind));
	h = fnv1a(h, &result, sizeof(result));
	h = fnv1a(h, path, strlen(path));
	if (!seen_insert(h))
		return;
	char comm[32];
	read_comm(tid, comm, sizeof(comm));
	static char line[PATH_MAX * 2 * 4 + 256];
	size_t used = (size_t)snprintf(line, sizeof(line), "%c\t%lld\t%d\t", KIND_CHAR[kind], result, tid);
	used = escape(line, sizeof(line) - 2, comm, used);
	line[used++] = '\t';
	used = escape(line, sizeof(line) - 2, path, used);
	line[used++] = '\n';
	write_all(line, used);
}

// Reads a NUL-terminated string from the tracee, at most cap-1 bytes. process_vm_readv is
// tried first (one call per page); it is refused for tracees that changed their uid (nginx
// workers), where PTRACE_PEEKDATA still works because we are their tracer.
static int read_string(pid_t tid, unsigned long addr, char *out, size_t cap)
{
	size_t got = 0;
	int use_vm = 1;
	while (got + 1 < cap) {
		size_t page_left = 4096 - ((addr + got) & 4095);
		size_t want = cap - 1 - got < page_left ? cap - 1 - got : page_left;
		if (use_vm) {
			struct iovec local = {out + got, want};
			struct iovec remote = {(void *)(addr + got), want};
			ssize_t n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
			if (n > 0) {
				void *nul = memchr(out + got, 0, (size_t)n);
				if (nul)
					return 0;
				got += (size_t)n;
				continue;
			}
			use_vm = 0;
		}
		// Aligned words never straddle a page: an unaligned read of a string that ends
		// just before an unmapped page would fail.
		unsigned long at = addr + got;
		unsigned long aligned = at & ~(unsigned long)(sizeof(long) - 1);
		size_t skip = at - aligned;
		errno = 0;
		long word = ptrace(PTRACE_PEEKDATA, tid, (void *)aligned, NULL);
		if (errno != 0)
			return -1;
		size_t take = sizeof(word) - skip;
		if (take > cap - 1 - got)
			take = cap - 1 - got;
		memcpy(out + got, (char *)&word + skip, take);
		void *nul = memchr(out + got, 0, take);
		if (nul)
			return 0;
		got += take;
	}
	out[cap - 1] = 0;
	return -1; // too long
}

static int proc_link(pid_t tid, const char *what, char *out, size_t cap)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/%d/%s", tid, what);
	ssize_t n = readlink(proc, out, cap - 1);
	if (n <= 0)
		return -1;
	out[n] = 0;
	if (out[0] != '/')
		return -1; // pipe:[…], socket:[…], anon_inode:…
	return 0;
}

// Classifies an x86_64 syscall: its kind, which argument holds the dirfd (-1: cwd), the path
// and the AT_* flags (-1: none), from the table the eBPF sensor dispatches on (minify_abi.h).
static int classify(long nr, int *dfd_arg, int *path_arg, int *flags_arg)
{
	*dfd_arg = -1;
	*path_arg = 1;
	*flags_arg = -1;
	switch (nr) {
#define CLASSIFY(nr_, name_, kind_, dfd_, path_, flags_) \
	case nr_: *dfd_arg = dfd_; *path_arg = path_; *flags_arg = flags_; return kind_;
	MINIFY_PATH_SYSCALLS(CLASSIFY)
#undef CLASSIFY
	default: return K_NONE;
	}
}

static void on_syscall_entry(struct thread *t, const struct __ptrace_syscall_info *info)
{
	t->pending_kind = K_NONE;
	if (info->arch != AUDIT_ARCH_X86_64)
		return; // 32-bit int 0x80 calls: numbers differ; not recorded
	long nr = (long)info->entry.nr;
	if (nr >= 0 && nr < MAX_SYSCALL && !syscall_seen[nr]) {
		syscall_seen[nr] = 1;
		char line[32];
		int n = snprintf(line, sizeof(line), "n\t%ld\n", nr);
		write_all(line, (size_t)n);
	}
	int dfd_arg, path_arg, flags_arg;
	int kind = classify(nr, &dfd_arg, &path_arg, &flags_arg);
	if (kind == K_NONE)
		return;
	unsigned long path_ptr = info->entry.args[path_arg];
	if (!path_ptr)
		return; // utimensat(fd, NULL, …) acts on an fd
	char path[PATH_MAX];
	if (read_string(t->tid, path_ptr, path, sizeof(path)) != 0) {
		unresolved++;
		return;
	}
	int dfd = dfd_arg >= 0 ? (int)info->entry.args[dfd_arg] : AT_FDCWD_ARG;
	unsigned long at_flags = flags_arg >= 0 ? info->entry.args[flags_arg] : 0;
	if (path[0] == '/') {
		snprintf(t->pending_path, sizeof(t->pending_path), "%s", path);
		t->pending_kind = kind;
		return;
	}
	char base[PATH_MAX];
	char fd_link[32];
	if (dfd == AT_FDCWD_ARG) {
		snprintf(fd_link, sizeof(fd_link), "cwd");
	} else {
		snprintf(fd_link, sizeof(fd_link), "fd/%d", dfd);
	}
	if (path[0] == 0) {
		// execveat(fd, "", AT_EMPTY_PATH) runs the file behind fd; any other empty path is
		// an fstat-style call with nothing to report.
		if (kind != K_EXEC || !(at_flags & AT_EMPTY_PATH_FLAG))
			return;
		if (proc_link(t->tid, fd_link, base, sizeof(base)) != 0) {
			unresolved++;
			return;
		}
		snprintf(t->pending_path, sizeof(t->pending_path), "%s", base);
		t->pending_kind = kind;
		return;
	}
	if (proc_link(t->tid, fd_link, base, sizeof(base)) != 0) {
		unresolved++;
		return;
	}
	snprintf(t->pending_path, sizeof(t->pending_path), "%s%s%s", base,
		 strcmp(base, "/") == 0 ? "" : "/", path);
	t->pending_kind = kind;
}

static void on_syscall_exit(struct thread *t, const struct __ptrace_syscall_info *info)
{
	if (t->pending_kind == K_NONE)
		return;
	report(t->tid, t->pending_kind, (long long)info->exit.rval, t->pending_path);
	t->pending_kind = K_NONE;
}

static void forward_signal(int sig)
{
	if (app_pid > 0)
		kill(app_pid, sig);
}

static void resume(pid_t tid, int sig)
{
	// ESRCH: the tracee was killed meanwhile; its exit comes through waitpid.
	ptrace(PTRACE_SYSCALL, tid, NULL, (void *)(long)sig);
}

static int exit_code_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

static void finish(int code)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "u\t%lu\nx\t%d\n", unresolved, code);
	write_all(line, (size_t)n);
	if (log_fd >= 0)
		close(log_fd);
	_exit(code);
}

int main(int argc, char **argv)
{
	const char *log_path = "/.minify-sensor/trace.log";
	int argi = 1;
	while (argi < argc && strcmp(argv[argi], "--") != 0) {
		if (strcmp(argv[argi], "-o") == 0 && argi + 1 < argc) {
			log_path = argv[argi + 1];
			argi += 2;
		} else {
			fprintf(stderr, "minify-sensor: unknown argument %s\n", argv[argi]);
			return 127;
		}
	}
	if (argi >= argc || argi + 1 >= argc) {
		fprintf(stderr, "usage: %s [-o LOG] -- PROGRAM [ARGS...]\n", argv[0]);
		return 127;
	}
	char **app_argv = &argv[argi + 1];

	log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0666);
	if (log_fd < 0)
		// Still run the app: a container that does not start is worse than no trace, and
		// minify reports an empty trace as a sensor failure.
		fprintf(stderr, "minify-sensor: cannot write %s: %s\n", log_path, strerror(errno));
	write_all("minify-ptrace 1\n", 16);

	// Installed before the fork so that no signal to PID 1 (ignored by default there) is lost.
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	const int forwarded[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH};
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaction(forwarded[i], &sa, NULL);

	pid_t child = fork();
	if (child < 0) {
		fprintf(stderr, "minify-sensor: fork: %s\n", strerror(errno));
		return 127;
	}
	if (child == 0) {
		// Caught signals revert to their defaults at exec by themselves.
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) {
			fprintf(stderr, "minify-sensor: PTRACE_TRACEME: %s\n", strerror(errno));
			_exit(127);
		}
		raise(SIGSTOP);
		execvp(app_argv[0], app_argv);
		int err = errno;
		fprintf(stderr, "minify-sensor: cannot run %s: %s\n", app_argv[0], strerror(err));
		_exit(err == ENOENT ? 127 : 126);
	}
	app_pid = child;

	int status;
	while (waitpid(child, &status, __WALL) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "minify-sensor: waitpid: %s\n", strerror(errno));
			return 127;
		}
	}
	if (!WIFSTOPPED(status)) {
		finish(exit_code_of(status));
	}
	long options = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
		       PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
	if (ptrace(PTRACE_SETOPTIONS, child, NULL, (void *)options) != 0) {
		fprintf(stderr, "minify-sensor: PTRACE_SETOPTIONS: %s\n", strerror(errno));
		kill(child, SIGKILL);
		return 127;
	}
	struct thread *first = get_thread(child);
	if (first)
		first->awaiting_first_stop = 0;
	resume(child, 0);

	for (;;) {
		pid_t tid = waitpid(-1, &status, __WALL);
		if (tid < 0) {
			if (errno == EINTR)
				continue;
			// ECHILD cannot happen before the app's own exit is seen; be safe anyway.
			finish(1);
		}
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			drop_thread(tid);
			if (tid == child)
				finish(exit_code_of(status));
			continue; // a thread, a descendant, or an orphan reaped as PID 1
		}
		if (!WIFSTOPPED(status))
			continue;
		struct thread *t = get_thread(tid);
		int sig = WSTOPSIG(status);
		int event = (unsigned)status >> 16;
		if (sig == (SIGTRAP | 0x80)) {
			if (t) {
				struct __ptrace_syscall_info info;
				memset(&info, 0, sizeof(info));
				long got = ptrace(PTRACE_GET_SYSCALL_INFO, tid, (void *)sizeof(info), &info);
				if (got > 0 && info.op == PTRACE_SYSCALL_INFO_ENTRY)
					on_syscall_entry(t, &info);
				else if (got > 0 && info.op == PTRACE_SYSCALL_INFO_EXIT)
					on_syscall_exit(t, &info);
			}
			resume(tid, 0);
			continue;
		}
		if (sig == SIGTRAP && event != 0) {
			unsigned long msg = 0;
			ptrace(PTRACE_GETEVENTMSG, tid, NULL, &msg);
			if (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK ||
			    event == PTRACE_EVENT_CLONE) {
				get_thread((pid_t)msg);
			} else if (event == PTRACE_EVENT_EXEC && (pid_t)msg != tid) {
				// A non-leader thread exec'd: it now carries the leader's tid, and its
				// pending execve must be reported under that tid.
				struct thread *old = find_thread((pid_t)msg);
				if (old && t) {
					t->pending_kind = old->pending_kind;
					memcpy(t->pending_path, old->pending_path, sizeof(t->pending_path));
				}
				drop_thread((pid_t)msg);
			}
			resume(tid, 0);
			continue;
		}
		if (t && t->awaiting_first_stop && sig == SIGSTOP) {
			t->awaiting_first_stop = 0;
			resume(tid, 0);
			continue;
		}
		if (t)
			t->awaiting_first_stop = 0;
		siginfo_t si;
		if (ptrace(PTRACE_GETSIGINFO, tid, NULL, &si) != 0) {
			// A group stop: for a PTRACE_TRACEME tracee it cannot be held without
			// PTRACE_LISTEN, so the tracee goes on running (documented above).
			resume(tid, 0);
			continue;
		}
		resume(tid, sig); // deliver the signal the tracee received
	}
}
