// SPDX-License-Identifier: GPL-2.0
//
// Kernel half of minify's eBPF sensor (user half: src/sense/ebpf.rs).
//
// Records every path that processes of ONE cgroup subtree open, exec, stat, access or readlink.
// Only tracepoints are used: fentry/fexit/LSM are refused under lockdown and kprobes are not built
// into the kernels this runs on. One raw tracepoint (sys_enter) serves every syscall and
// dispatches on the syscall number, so the verifier runs once instead of once per syscall.
//
// Flow: sys_enter copies the user path into a per-CPU event and, for relative paths, resolves
// the directory in the kernel (walking dentries and mounts, because userspace /proc lookups
// lose the race with short-lived processes), then submits the event to a ring buffer. When the
// path cannot be read yet (its page is not resident), the event is parked per thread and read
// again at that thread's next syscall, by which time the kernel has faulted the page in.
// There is no sys_exit program: every syscall of the host runs the programs attached to the
// syscall tracepoints, and a second program cost the whole host about 80 ns per syscall.
//
// The event layout, kinds, flags and the syscall table live in minify_abi.h, shared with the
// ptrace sensor and (through build.rs) with src/sense/ebpf.rs.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "minify_abi.h"

char LICENSE[] SEC("license") = "GPL";

#define AT_FDCWD -100
#define AT_EMPTY_PATH 0x1000

// Dentry steps plus mount crossings per walk.
#define WALK_STEPS 48



// Unread ring-buffer bytes above which the reader is woken at once (the buffer holds 16 MiB).
#define WAKEUP_BYTES (1024 * 1024)


struct event {
	__u64 pid_tgid;
	__u32 kind;
	__u32 flags;
	__u32 syscall_nr;
	__u16 path_len;
	__u16 comp_count;
	__u16 comp_len[MAX_COMPONENTS];
	char comm[COMM_LEN];
	char path[PATH_AREA];
	char comps[COMP_AREA + NAME_READ];
};

// Every offset minify_abi.h promises (and src/sense/ebpf.rs decodes with).
#define CHECK_OFFSET(field, at) \
	_Static_assert(__builtin_offsetof(struct event, field) == (at), "event layout: " #field)
CHECK_OFFSET(pid_tgid, EVENT_PID_TGID);
CHECK_OFFSET(kind, EVENT_KIND);
CHECK_OFFSET(flags, EVENT_FLAGS);
CHECK_OFFSET(syscall_nr, EVENT_SYSCALL_NR);
CHECK_OFFSET(path_len, EVENT_PATH_LEN);
CHECK_OFFSET(comp_count, EVENT_COMP_COUNT);
CHECK_OFFSET(comp_len, EVENT_COMP_LEN);
CHECK_OFFSET(comm, EVENT_COMM);
CHECK_OFFSET(path, EVENT_PATH);
CHECK_OFFSET(comps, EVENT_COMPS);
_Static_assert(sizeof(struct event) == EVENT_SIZE, "event layout: size");

struct pending {
	__u64 path_ptr;
	__s64 dfd;
	__u64 at_flags;
	struct event ev;
};

// The target cgroup v2 directory: its inode (cgroup id) and its level below the root. Set by
// the loader before the programs are verified (read-only data), so the filter that every
// syscall of the host passes through costs no map lookup.
const volatile __u64 minify_target_cgroup = 0;
const volatile __u32 minify_target_level = 0;

// Entries parked in minify_refetch (an upper bound: evicted entries are never subtracted).
// While it is 0, which is nearly always, no traced syscall looks the map up.
__u64 minify_parked = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} minify_events SEC(".maps");

// Events whose path read faulted, by pid_tgid, until the thread's next syscall. LRU so that
// threads killed before their next syscall cannot fill it.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 2048);
	__type(key, __u64);
	__type(value, struct pending);
} minify_refetch SEC(".maps");

// The event being built (too big for the BPF stack).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pending);
} minify_scratch SEC(".maps");

// Per-CPU counters: events lost, and paths read late (indices LOST_* and COUNT_* above).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} minify_counters SEC(".maps");

// syscall number -> 1 once the cgroup made it.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} minify_syscalls SEC(".maps");

// Levels below the target cgroup searched for it: containers sit one level below.
#define MAX_DEPTH_BELOW 16

// Whether the current task is in the target cgroup or below it. Every syscall of the host runs
// this first, so it reads the task's cgroup through BTF pointers (plain loads) instead of
// calling bpf_get_current_ancestor_cgroup_id(), which cost the host ~15 ns more per syscall.
static __always_inline int in_target(void)
{
	if (minify_target_cgroup == 0)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct cgroup *cgrp = task->cgroups->dfl_cgrp;
	int target_level = (int)minify_target_level;
	int level = cgrp->level;
	// Host processes sit above the target's level: done after three loads.
	if (level < target_level)
		return 0;
	for (int i = 0; i < MAX_DEPTH_BELOW && level > target_level; i++) {
		cgrp = cgrp->self.parent->cgroup;
		level--;
	}
	return level == target_level && cgrp->kn->id == minify_target_cgroup;
}

// The raw tracepoint's arguments. Not `ctx->args[i]`: vmlinux.h marks every struct for CO-RE
// relocation, and aya rejects a relocation indexing the flexible `args[0]` array.
static __always_inline const __u64 *raw_args(struct bpf_raw_tracepoint_args *ctx)
{
	return (const __u64 *)ctx;
}

// The n-th syscall argument from the user registers (x86_64 syscall convention).
static __always_inline __u64 syscall_arg(struct pt_regs *regs, int n)
{
	switch (n) {
	case 0: return BPF_CORE_READ(regs, di);
	case 1: return BPF_CORE_READ(regs, si);
	case 2: return BPF_CORE_READ(regs, dx);
	case 3: return BPF_CORE_READ(regs, r10);
	case 4: return BPF_CORE_READ(regs, r8);
	default: return BPF_CORE_READ(regs, r9);
	}
}

static __always_inline void bump_counter(__u32 which)
{
	__u64 *counter = bpf_map_lookup_elem(&minify_counters, &which);
	if (counter)
		*counter += 1;
}

struct walk_state {
	struct event *ev;
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	__u32 used;
	__u32 count;
	int reached_root;
};

// One step of the walk from a dentry towards the task's root; bpf_loop callback, so the
// verifier checks the body once instead of once per unrolled iteration.
static long walk_step(__u32 index, void *data)
{
	struct walk_state *st = data;
	struct event *ev = st->ev;
	// Locals, not st-> fields, inside BPF_CORE_READ: only kernel types get CO-RE relocations.
	struct dentry *dentry = st->dentry;
	struct vfsmount *vfsmnt = st->vfsmnt;
	struct mount *mnt = st->mnt;
	if (dentry == st->root_dentry && vfsmnt == st->root_mnt) {
		st->reached_root = 1;
		return 1;
	}
	struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	if (dentry == mnt_root) {
		struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);
		if (parent == mnt) {
			// Top of the mount tree without meeting the task's root (the root is not an
			// ancestor, e.g. a dirfd opened before chroot): what we have is still the
			// path from the namespace root.
			st->reached_root = 1;
			return 1;
		}
		st->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		st->mnt = parent;
		st->vfsmnt = &parent->mnt;
		return 0;
	}
	struct dentry *parent_dentry = BPF_CORE_READ(dentry, d_parent);
	if (parent_dentry == dentry) {
		st->reached_root = 1;
		return 1;
	}
	__u32 used = st->used;
	__u32 count = st->count;
	if (count >= MAX_COMPONENTS || used >= COMP_AREA) {
		ev->flags |= EV_TRUNCATED;
		return 1;
	}
	const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
	long n = bpf_probe_read_kernel_str(&ev->comps[used & (COMP_AREA - 1)], NAME_READ, name);
	if (n <= 1) {
		ev->flags |= EV_WALK_FAILED;
		return 1;
	}
	ev->comp_len[count & (MAX_COMPONENTS - 1)] = (__u16)(n - 1);
	st->used = used + (__u32)(n - 1);
	st->count = count + 1;
	st->dentry = parent_dentry;
	return 0;
}

// Fills ev->comps with the names from `start` up to the task's root, leaf first.
static __always_inline void walk_to_root(struct event *ev, struct path *start)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct path root;
	if (BPF_CORE_READ_INTO(&root, task, fs, root) != 0) {
		ev->flags |= EV_WALK_FAILED;
		return;
	}
	struct walk_state st = {
		.ev = ev,
		.dentry = start->dentry,
		.vfsmnt = start->mnt,
		.mnt = container_of(start->mnt, struct mount, mnt),
		.root_dentry = root.dentry,
		.root_mnt = root.mnt,
	};
	bpf_loop(WALK_STEPS, walk_step, &st, 0);
	if (!st.reached_root && !(ev->flags & (EV_TRUNCATED | EV_WALK_FAILED)))
		ev->flags |= EV_TRUNCATED;
	if (st.used > COMP_AREA)
		ev->flags |= EV_TRUNCATED;
	ev->comp_count = (__u16)st.count;
}

// The starting point of a relative lookup: the cwd for AT_FDCWD, else the dirfd's file.
static __always_inline int dir_of(__s64 dfd, struct path *out)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	int fd = (int)dfd;
	if (fd == AT_FDCWD)
		return BPF_CORE_READ_INTO(out, task, fs, pwd);
	if (fd < 0)
		return -1;
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return -1;
	unsigned int max_fds = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned int)fd >= max_fds)
		return -1;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) != 0 || !file)
		return -1;
	return BPF_CORE_READ_INTO(out, file, f_path);
}

// Reads the user path and, when it is relative, resolves its directory.
static __always_inline void read_path(struct pending *p)
{
	struct event *ev = &p->ev;
	if (!p->path_ptr) {
		// utimensat(fd, NULL, ...) and friends act on an fd: no path to report.
		ev->flags |= EV_DROP;
		return;
	}
	long n = bpf_probe_read_user_str(ev->path, PATH_AREA, (const void *)p->path_ptr);
	if (n < 0) {
		ev->flags |= EV_PATH_FAULT;
		return;
	}
	ev->flags &= ~EV_PATH_FAULT;
	if (n >= PATH_AREA)
		ev->flags |= EV_TRUNCATED;
	ev->path_len = n > 0 ? (__u16)(n - 1) : 0;

	if (ev->path_len == 0) {
		// execveat(fd, "", AT_EMPTY_PATH) runs the file behind fd: report that file.
		// Any other empty path is an fstat-style call (or ENOENT) with nothing to report.
		if (ev->kind == KIND_EXEC && (p->at_flags & AT_EMPTY_PATH)) {
			struct path file_path;
			if (dir_of(p->dfd, &file_path) != 0) {
				ev->flags |= EV_WALK_FAILED;
				return;
			}
			ev->flags |= EV_FD_IS_PATH;
			walk_to_root(ev, &file_path);
		} else {
			ev->flags |= EV_DROP;
		}
		return;
	}
	if (ev->path[0] == '/')
		return;
	struct path dir;
	if (dir_of(p->dfd, &dir) != 0) {
		ev->flags |= EV_WALK_FAILED;
		return;
	}
	ev->flags |= EV_RELATIVE;
	walk_to_root(ev, &dir);
}

// Submits a finished event to the ring buffer.
static __always_inline void submit(struct event *ev)
{
	if (ev->flags & EV_DROP)
		return;
	__u32 used = 0;
	__u32 count = ev->comp_count;
	if (count > MAX_COMPONENTS)
		count = MAX_COMPONENTS;
	for (int i = 0; i < MAX_COMPONENTS; i++) {
		if (i >= count)
			break;
		used += ev->comp_len[i];
	}
	if (used >= COMP_AREA) {
		// Only a walk already flagged truncated gets here; its tail is not needed.
		ev->flags |= EV_TRUNCATED;
		used = COMP_AREA - 1;
	}
	barrier_var(used);
	// The mask is what lets the verifier prove the size stays inside the event.
	__u64 size = offsetof(struct event, comps) + (used & (COMP_AREA - 1));
	// No wakeup per event: the reader drains on its own schedule, and a wakeup per event cost
	// a context switch per traced syscall. It is woken only when the buffer fills up.
	__u64 wakeup = bpf_ringbuf_query(&minify_events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES
		? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&minify_events, ev, size, wakeup) != 0)
		bump_counter(LOST_RINGBUF);
}

// The thread's previous path syscall could not read its path: the kernel has faulted the page
// in since, and the memory is the same (a page that faults is file-backed and never written,
// typically a string constant in a binary's read-only data, since written pages stay
// resident without swap), so read it now.
static __noinline void refetch_parked(__u64 pid_tgid)
{
	struct pending *p = bpf_map_lookup_elem(&minify_refetch, &pid_tgid);
	if (!p)
		return;
	read_path(p);
	if (!(p->ev.flags & EV_PATH_FAULT))
		bump_counter(COUNT_REFETCHED);
	submit(&p->ev);
	if (bpf_map_delete_elem(&minify_refetch, &pid_tgid) == 0)
		__sync_fetch_and_sub(&minify_parked, 1);
}

// One raw tracepoint on sys_enter rather than ~50 per-syscall syscalls/sys_enter_* (and
// sys_exit_*) tracepoints: closing a perf tracepoint attachment waits for an RCU grace period
// under a global mutex, about 35 ms each, seconds per run. Raw rather than the perf tracepoint
// raw_syscalls/sys_enter: every syscall of the host runs this program, and a perf tracepoint
// first copies the syscall's arguments into a trace record; a raw one only passes the
// registers' address, and the cgroup filter returns before anything is read.
// ctx->args: (struct pt_regs *regs, long id).
SEC("raw_tracepoint/sys_enter")
int minify_enter(struct bpf_raw_tracepoint_args *ctx)
{
	if (!in_target())
		return 0;
	const __u64 *args = raw_args(ctx);
	struct pt_regs *regs = (struct pt_regs *)args[0];
	__u32 nr = (__u32)args[1];
	__u8 *seen = bpf_map_lookup_elem(&minify_syscalls, &nr);
	// Read before write: a flag set once is not dirtied again on every syscall of every CPU.
	if (seen && !*seen)
		*seen = 1;
	if (*(volatile __u64 *)&minify_parked != 0)
		refetch_parked(bpf_get_current_pid_tgid());

	// x86_64 syscall numbers: which argument holds dirfd, path and AT_* flags (minify_abi.h).
	__u32 kind;
	int dfd_arg = -1, path_arg = 1, flags_arg = -1;
	switch (nr) {
#define DISPATCH(nr_, name_, kind_, dfd_, path_, flags_) \
	case nr_: kind = kind_; dfd_arg = dfd_; path_arg = path_; flags_arg = flags_; break;
	MINIFY_PATH_SYSCALLS(DISPATCH)
#undef DISPATCH
	default: return 0;
	}
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 arg0 = syscall_arg(regs, 0);
	__u64 arg1 = path_arg == 1 ? syscall_arg(regs, 1) : 0;

	__u32 zero = 0;
	struct pending *p = bpf_map_lookup_elem(&minify_scratch, &zero);
	if (!p)
		return 0;
	p->path_ptr = path_arg == 0 ? arg0 : arg1;
	// Raw args are 64-bit: the int dirfd must be narrowed before comparing with AT_FDCWD.
	p->dfd = dfd_arg == 0 ? (__s64)(int)arg0 : AT_FDCWD;
	p->at_flags = 0;
	if (flags_arg >= 2 && flags_arg <= 5)
		p->at_flags = syscall_arg(regs, flags_arg);
	p->ev.pid_tgid = pid_tgid;
	p->ev.kind = kind;
	p->ev.flags = 0;
	p->ev.syscall_nr = nr;
	p->ev.path_len = 0;
	p->ev.comp_count = 0;
	bpf_get_current_comm(p->ev.comm, sizeof(p->ev.comm));
	read_path(p);
	// An exec's old memory is gone by the thread's next syscall: report it unresolved.
	if ((p->ev.flags & EV_PATH_FAULT) && kind != KIND_EXEC) {
		if (bpf_map_update_elem(&minify_refetch, &pid_tgid, p, BPF_ANY) == 0)
			__sync_fetch_and_add(&minify_parked, 1);
		else
			bump_counter(LOST_PENDING);
		return 0;
	}
	submit(&p->ev);
	return 0;
}
