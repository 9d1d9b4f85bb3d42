// SPDX-License-Identifier: GPL-2.0
//
// The contract between minify's sensors and their Rust halves, written ONCE:
// - the kinds of path access (both sensors),
// - the x86_64 syscalls that name a path and where their arguments are (both sensors: the
//   eBPF program's dispatch in trace.bpf.c and the ptrace wrapper's classify() include the
//   same table, so they cannot disagree on what is traced),
// - the layout of the eBPF ring-buffer event, its flags and counter indices. trace.bpf.c
//   _Static_asserts every offset below against `struct event`; build.rs turns every
//   `#define NAME <integer>` of this file into a Rust constant (OUT_DIR/abi.rs) that
//   src/sense/ebpf.rs decodes with. Keep each define on one line, its value an integer literal.
#ifndef MINIFY_ABI_H
#define MINIFY_ABI_H

// Kinds of access.
#define KIND_OPEN 0
#define KIND_EXEC 1
#define KIND_STAT 2
#define KIND_ACCESS 3
#define KIND_READLINK 4
// Any other lookup of an existing path: mkdir (EEXIST), chdir, unlink, rename, chmod, chown,
// utimes, xattrs, statfs, truncate, inotify watches, mknod. An app that mkdir()s a directory the
// image ships fails differently when the slim image lacks it.
#define KIND_LOOKUP 5

// Bytes of the user path kept; a longer path is flagged truncated.
#define PATH_AREA 1024
// Directory components are packed into this area, leaf first; the extra NAME_READ bytes let
// the verifier accept a read of a full name at any offset below COMP_AREA.
#define COMP_AREA 2048
#define NAME_READ 256
#define MAX_COMPONENTS 32
#define COMM_LEN 16

// Offsets in `struct event` (trace.bpf.c), checked there.
#define EVENT_PID_TGID 0
#define EVENT_KIND 8
#define EVENT_FLAGS 12
#define EVENT_SYSCALL_NR 16
#define EVENT_PATH_LEN 20
#define EVENT_COMP_COUNT 22
#define EVENT_COMP_LEN 24
#define EVENT_COMM 88
#define EVENT_PATH 104
#define EVENT_COMPS 1128
#define EVENT_SIZE 3432

// Event flags.
#define EV_RELATIVE 0x1    // components hold the directory the path is relative to
#define EV_FD_IS_PATH 0x2  // execveat(fd, "", AT_EMPTY_PATH): components are the file itself
#define EV_PATH_FAULT 0x4  // the user path could not be read at enter
#define EV_TRUNCATED 0x8   // path or directory walk did not fit
#define EV_WALK_FAILED 0x10
#define EV_DROP 0x20       // nothing worth reporting (fstat-style empty path)

// Indices of the per-CPU counters in minify_counters.
#define LOST_RINGBUF 0
#define LOST_PENDING 1     // a faulted event could not be parked
#define COUNT_REFETCHED 2  // paths read at the thread's next syscall

// The x86_64 syscalls that name a path: X(nr, name, kind, dirfd arg, path arg, AT_* flags arg),
// arguments counted from 0, -1 for none (a dirfd of -1 means the cwd). Of syscalls naming two
// paths (rename, link, …) the first (the source) is recorded.
#define MINIFY_PATH_SYSCALLS(X) \
	X(2, open, KIND_OPEN, -1, 0, -1) \
	X(257, openat, KIND_OPEN, 0, 1, -1) \
	X(437, openat2, KIND_OPEN, 0, 1, -1) \
	X(85, creat, KIND_OPEN, -1, 0, -1) \
	X(59, execve, KIND_EXEC, -1, 0, -1) \
	X(322, execveat, KIND_EXEC, 0, 1, 4) \
	X(4, stat, KIND_STAT, -1, 0, -1) \
	X(6, lstat, KIND_STAT, -1, 0, -1) \
	X(262, newfstatat, KIND_STAT, 0, 1, 3) \
	X(332, statx, KIND_STAT, 0, 1, 2) \
	X(21, access, KIND_ACCESS, -1, 0, -1) \
	X(269, faccessat, KIND_ACCESS, 0, 1, -1) \
	X(439, faccessat2, KIND_ACCESS, 0, 1, 3) \
	X(89, readlink, KIND_READLINK, -1, 0, -1) \
	X(267, readlinkat, KIND_READLINK, 0, 1, -1) \
	X(80, chdir, KIND_LOOKUP, -1, 0, -1) \
	X(83, mkdir, KIND_LOOKUP, -1, 0, -1) \
	X(84, rmdir, KIND_LOOKUP, -1, 0, -1) \
	X(87, unlink, KIND_LOOKUP, -1, 0, -1) \
	X(82, rename, KIND_LOOKUP, -1, 0, -1) \
	X(86, link, KIND_LOOKUP, -1, 0, -1) \
	X(90, chmod, KIND_LOOKUP, -1, 0, -1) \
	X(92, chown, KIND_LOOKUP, -1, 0, -1) \
	X(94, lchown, KIND_LOOKUP, -1, 0, -1) \
	X(76, truncate, KIND_LOOKUP, -1, 0, -1) \
	X(132, utime, KIND_LOOKUP, -1, 0, -1) \
	X(235, utimes, KIND_LOOKUP, -1, 0, -1) \
	X(137, statfs, KIND_LOOKUP, -1, 0, -1) \
	X(133, mknod, KIND_LOOKUP, -1, 0, -1) \
	X(188, setxattr, KIND_LOOKUP, -1, 0, -1) \
	X(189, lsetxattr, KIND_LOOKUP, -1, 0, -1) \
	X(191, getxattr, KIND_LOOKUP, -1, 0, -1) \
	X(192, lgetxattr, KIND_LOOKUP, -1, 0, -1) \
	X(194, listxattr, KIND_LOOKUP, -1, 0, -1) \
	X(195, llistxattr, KIND_LOOKUP, -1, 0, -1) \
	X(197, removexattr, KIND_LOOKUP, -1, 0, -1) \
	X(198, lremovexattr, KIND_LOOKUP, -1, 0, -1) \
	X(258, mkdirat, KIND_LOOKUP, 0, 1, -1) \
	X(263, unlinkat, KIND_LOOKUP, 0, 1, -1) \
	X(264, renameat, KIND_LOOKUP, 0, 1, -1) \
	X(316, renameat2, KIND_LOOKUP, 0, 1, -1) \
	X(265, linkat, KIND_LOOKUP, 0, 1, -1) \
	X(268, fchmodat, KIND_LOOKUP, 0, 1, -1) \
	X(452, fchmodat2, KIND_LOOKUP, 0, 1, -1) \
	X(260, fchownat, KIND_LOOKUP, 0, 1, -1) \
	X(261, futimesat, KIND_LOOKUP, 0, 1, -1) \
	X(259, mknodat, KIND_LOOKUP, 0, 1, -1) \
	X(303, name_to_handle_at, KIND_LOOKUP, 0, 1, -1) \
	/* utimensat: a NULL path means the dirfd itself (dropped by the sensors) */ \
	X(280, utimensat, KIND_LOOKUP, 0, 1, -1) \
	/* inotify_add_watch(fd, path, mask): arg 0 is no dirfd */ \
	X(254, inotify_add_watch, KIND_LOOKUP, -1, 1, -1)

#endif
