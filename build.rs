//! Compiles the eBPF sensor (ebpf/trace.bpf.c) into OUT_DIR/trace.bpf.o and the in-container
//! ptrace sensor (sensor/ptrace_sensor.c) into the static binary OUT_DIR/ptrace_sensor.
//!
//! vmlinux.h is generated from the build machine's kernel BTF; the object itself is CO-RE, so it
//! loads on any kernel with BTF, not only the one it was built on.

use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGES_HINT: &str = "install the Debian packages: clang llvm libbpf-dev bpftool";

fn main() {
    println!("cargo:rerun-if-changed=ebpf");
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    if let Err(message) = build_bpf(&out_dir) {
        // build.rs is allowed to fail loudly: there is no sensor without the BPF object.
        eprintln!("error: cannot build the eBPF sensor: {message}");
        panic!("cannot build the eBPF sensor: {message}");
    }
    println!("cargo:rerun-if-changed=sensor");
    if let Err(message) = build_ptrace_sensor(&out_dir) {
        eprintln!("error: cannot build the ptrace sensor: {message}");
        panic!("cannot build the ptrace sensor: {message}");
    }
}

/// Compiles the in-container sensor (sensor/ptrace_sensor.c) into a static binary,
/// OUT_DIR/ptrace_sensor, embedded by src/sense/ptrace.rs. Static so that it runs in any image,
/// `FROM scratch` included.
fn build_ptrace_sensor(out_dir: &Path) -> Result<(), String> {
    let binary = out_dir.join("ptrace_sensor");
    let compile = Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(&binary)
        .arg("sensor/ptrace_sensor.c")
        .output()
        .map_err(|e| format!("cannot run gcc ({e}); install the Debian packages: gcc libc6-dev"))?;
    if !compile.status.success() {
        return Err(format!(
            "gcc -static failed compiling sensor/ptrace_sensor.c:\n{}\n(a static libc is needed: \
             install the Debian packages gcc libc6-dev)",
            String::from_utf8_lossy(&compile.stderr)
        ));
    }
    Ok(())
}

fn build_bpf(out_dir: &Path) -> Result<(), String> {
    let btf = Path::new("/sys/kernel/btf/vmlinux");
    if !btf.exists() {
        return Err(format!(
            "{} is missing: the kernel was built without BTF (CONFIG_DEBUG_INFO_BTF)",
            btf.display()
        ));
    }
    let vmlinux_h = out_dir.join("vmlinux.h");
    let dump = Command::new("bpftool")
        .args(["btf", "dump", "file"])
        .arg(btf)
        .args(["format", "c"])
        .output()
        .map_err(|e| format!("cannot run bpftool ({e}); {PACKAGES_HINT}"))?;
    if !dump.status.success() {
        return Err(format!(
            "bpftool btf dump failed: {}",
            String::from_utf8_lossy(&dump.stderr).trim()
        ));
    }
    std::fs::write(&vmlinux_h, &dump.stdout)
        .map_err(|e| format!("cannot write {}: {e}", vmlinux_h.display()))?;

    let object = out_dir.join("trace.bpf.o");
    let compile = Command::new("clang")
        .args([
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-D__TARGET_ARCH_x86",
            "-Wall",
        ])
        .arg("-I")
        .arg(out_dir)
        .args(["-I", "/usr/include/bpf", "-I", "/usr/include"])
        .args(["-c", "ebpf/trace.bpf.c", "-o"])
        .arg(&object)
        .output()
        .map_err(|e| format!("cannot run clang ({e}); {PACKAGES_HINT}"))?;
    if !compile.status.success() {
        return Err(format!(
            "clang failed compiling ebpf/trace.bpf.c:\n{}\n(if headers are missing: {PACKAGES_HINT})",
            String::from_utf8_lossy(&compile.stderr)
        ));
    }
    Ok(())
}
