//! Tests of [`compute`] over fake images: the whole pipeline from traced paths to the kept set.

use super::fake::FakeImage;
use super::*;
use crate::sense::{Access, AccessKind};

fn access(path: &str, kind: AccessKind) -> Access {
    Access {
        path: path.to_string(),
        kind,
        pid: 1,
        comm: "app".to_string(),
        result: Some(0),
    }
}

fn run(image: &FakeImage, traced: &[Access], env: &[String]) -> Closure {
    compute(
        image,
        &ClosureInput {
            traced,
            env,
            extra_paths: Vec::new(),
            app_closure: crate::closure::lang::AppClosure::Off,
            ..Default::default()
        },
    )
}

fn reasons<'a>(closure: &'a Closure, path: &str) -> &'a [Reason] {
    closure
        .kept
        .paths
        .get(path)
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("{path} not kept; kept: {:#?}", closure.kept.paths.keys()))
}

/// Debian bookworm's merged-/usr skeleton: /lib, /lib64, /bin, /sbin are symlinks into /usr.
fn merged_usr() -> FakeImage {
    let mut image = FakeImage::new();
    for dir in [
        "/usr/bin",
        "/usr/sbin",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/etc",
    ] {
        image.dir(dir);
    }
    image.symlink("/lib", "usr/lib");
    image.symlink("/lib64", "usr/lib64");
    image.symlink("/bin", "usr/bin");
    image.symlink("/sbin", "usr/sbin");
    image.symlink(
        "/usr/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    );
    image
}

/// Copies a host library into the image under /usr/lib/x86_64-linux-gnu with its soname link.
fn copy_host_library(image: &mut FakeImage, soname: &str) -> Option<String> {
    let host = format!("/lib/x86_64-linux-gnu/{soname}");
    let real = std::fs::canonicalize(&host).ok()?;
    let real_name = real.file_name()?.to_str()?.to_string();
    let content = std::fs::read(&real).ok()?;
    let in_image = format!("/usr/lib/x86_64-linux-gnu/{real_name}");
    image.executable(&in_image, &content);
    if real_name != soname {
        image.symlink(&format!("/usr/lib/x86_64-linux-gnu/{soname}"), &real_name);
    }
    Some(in_image)
}

/// `cc` is needed to build tiny ELF objects; absent, the test is skipped (but not under CI).
fn compiler_available() -> bool {
    crate::testkit::require(
        "a C compiler (cc)",
        crate::testkit::ci::tool_check("cc", "--version"),
    )
}

fn host_ls_image() -> Option<FakeImage> {
    let mut image = merged_usr();
    image.executable("/usr/bin/ls", &std::fs::read("/usr/bin/ls").ok()?);
    for soname in [
        "libc.so.6",
        "libselinux.so.1",
        "libpcre2-8.so.0",
        "ld-linux-x86-64.so.2",
    ] {
        copy_host_library(&mut image, soname)?;
    }
    Some(image)
}

#[test]
fn host_ls_keeps_loader_and_library_chain_with_reasons() {
    let Some(image) = host_ls_image() else {
        eprintln!("skipping: host lacks Debian's ls/libc/libselinux/libpcre2");
        return;
    };
    let closure = run(&image, &[access("/bin/ls", AccessKind::Exec)], &[]);
    assert!(
        closure.unresolved_needs.is_empty(),
        "{:?}",
        closure.unresolved_needs
    );
    assert!(matches!(
        reasons(&closure, "/usr/bin/ls")[0],
        Reason::Traced { .. }
    ));
    assert!(reasons(&closure, "/bin").contains(&Reason::SymlinkHop {
        of: "/bin/ls".into()
    }));
    assert!(reasons(&closure, "/usr").contains(&Reason::ParentDir));

    let loader = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
    assert!(reasons(&closure, loader).contains(&Reason::ElfInterpreter {
        of: "/usr/bin/ls".into()
    }));
    let loader_hop = Reason::SymlinkHop {
        of: "/lib64/ld-linux-x86-64.so.2".into(),
    };
    for hop in ["/lib64", "/usr/lib64/ld-linux-x86-64.so.2", "/lib"] {
        assert!(reasons(&closure, hop).contains(&loader_hop), "{hop}");
    }
    assert!(reasons(&closure, "/usr/lib64").contains(&Reason::ParentDir));

    let needed_by_ls = |soname: &str| Reason::ElfNeeded {
        of: "/usr/bin/ls".into(),
        soname: soname.into(),
    };
    assert!(reasons(&closure, "/usr/lib/x86_64-linux-gnu/libc.so.6")
        .contains(&needed_by_ls("libc.so.6")));
    assert!(
        reasons(&closure, "/usr/lib/x86_64-linux-gnu/libselinux.so.1")
            .contains(&needed_by_ls("libselinux.so.1"))
    );
    // libpcre2 is only needed by libselinux: found through the recursion, with its soname link.
    let pcre_link = "/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0";
    assert!(matches!(
        reasons(&closure, pcre_link)[0],
        Reason::SymlinkHop { .. }
    ));
    let pcre_real = closure
        .kept
        .paths
        .iter()
        .find(|(path, _)| path.starts_with("/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0."))
        .expect("real libpcre2 kept");
    assert!(pcre_real.1.contains(&Reason::ElfNeeded {
        of: "/usr/lib/x86_64-linux-gnu/libselinux.so.1".into(),
        soname: "libpcre2-8.so.0".into(),
    }));
    // Nothing else sneaks in.
    assert!(!closure.kept.contains("/usr/sbin"));
}

#[test]
fn host_ls_libraries_found_through_the_images_ld_so_cache() {
    let Some(mut image) = host_ls_image() else {
        eprintln!("skipping: host lacks Debian's ls and libraries");
        return;
    };
    let Ok(cache) = std::fs::read("/etc/ld.so.cache") else {
        eprintln!("skipping: no host ld.so.cache");
        return;
    };
    // The cache is searched before the default dirs, and the host's names paths under /lib.
    image.file("/etc/ld.so.cache", &cache);
    let closure = run(&image, &[access("/usr/bin/ls", AccessKind::Exec)], &[]);
    assert!(
        closure.unresolved_needs.is_empty(),
        "{:?}",
        closure.unresolved_needs
    );
    assert!(matches!(
        reasons(&closure, "/etc/ld.so.cache")[0],
        Reason::Runtime { .. }
    ));
    // The host cache maps libc.so.6 to /lib/x86_64-linux-gnu/libc.so.6: the /lib hop is kept.
    let via_cache = Reason::SymlinkHop {
        of: "/lib/x86_64-linux-gnu/libc.so.6".into(),
    };
    assert!(reasons(&closure, "/lib").contains(&via_cache));
}

#[test]
fn runpath_with_origin_finds_library_beside_the_executable() {
    if !compiler_available() {
        return;
    }
    let dir = tempfile_dir();
    let lib_src = dir.join("lib.c");
    let main_src = dir.join("main.c");
    std::fs::write(&lib_src, "int answer(void) { return 42; }\n").unwrap();
    std::fs::write(
        &main_src,
        "int answer(void);\nint main(void) { return answer(); }\n",
    )
    .unwrap();
    let lib = dir.join("libanswer.so");
    let exe = dir.join("app");
    let cc = |args: &[&str]| {
        let status = std::process::Command::new("cc")
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "cc {args:?}");
    };
    cc(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libanswer.so",
        "-o",
        lib.to_str().unwrap(),
        lib_src.to_str().unwrap(),
    ]);
    cc(&[
        "-o",
        exe.to_str().unwrap(),
        main_src.to_str().unwrap(),
        &format!("-L{}", dir.display()),
        "-lanswer",
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib",
    ]);
    let Some(mut image) = host_ls_image() else {
        eprintln!("skipping: host lacks Debian's libc");
        return;
    };
    image.executable("/opt/app/bin/app", &std::fs::read(&exe).unwrap());
    image.executable("/opt/app/lib/libanswer.so", &std::fs::read(&lib).unwrap());
    // Same name in a default dir but of the wrong class: must not be picked even without RUNPATH.
    image.executable(
        "/usr/lib/x86_64-linux-gnu/libanswer.so",
        b"\x7fELF\x01\x01\x01",
    );

    let info = elf::parse_elf(&std::fs::read(&exe).unwrap()).unwrap();
    assert_eq!(info.runpath, ["$ORIGIN/../lib"]);

    let closure = run(&image, &[access("/opt/app/bin/app", AccessKind::Exec)], &[]);
    assert!(
        closure.unresolved_needs.is_empty(),
        "{:?}",
        closure.unresolved_needs
    );
    assert!(
        reasons(&closure, "/opt/app/lib/libanswer.so").contains(&Reason::ElfNeeded {
            of: "/opt/app/bin/app".into(),
            soname: "libanswer.so".into(),
        })
    );
    // `..` walked back through /opt/app/bin.
    assert!(reasons(&closure, "/opt/app/bin").contains(&Reason::ParentDir));
    assert!(!closure
        .kept
        .contains("/usr/lib/x86_64-linux-gnu/libanswer.so"));
    std::fs::remove_dir_all(dir).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    tempfile::tempdir().expect("temp dir").keep()
}

#[test]
fn ld_library_path_from_image_env_is_searched() {
    let Some(mut image) = host_ls_image() else {
        eprintln!("skipping: host lacks Debian's ls and libraries");
        return;
    };
    // Move libselinux to a directory only LD_LIBRARY_PATH names.
    let selinux = std::fs::read("/lib/x86_64-linux-gnu/libselinux.so.1").unwrap();
    image
        .entries
        .remove("/usr/lib/x86_64-linux-gnu/libselinux.so.1");
    image.executable("/opt/libs/libselinux.so.1", &selinux);

    let without = run(&image, &[access("/usr/bin/ls", AccessKind::Exec)], &[]);
    assert_eq!(
        without.unresolved_needs,
        [UnresolvedNeed {
            of: "/usr/bin/ls".into(),
            soname: "libselinux.so.1".into()
        }]
    );
    let env = ["LD_LIBRARY_PATH=/nowhere:/opt/libs".to_string()];
    let with = run(&image, &[access("/usr/bin/ls", AccessKind::Exec)], &env);
    assert!(
        with.unresolved_needs.is_empty(),
        "{:?}",
        with.unresolved_needs
    );
    assert!(with.kept.contains("/opt/libs/libselinux.so.1"));
    assert!(with
        .kept
        .contains("/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0"));
}

#[test]
fn env_shebang_keeps_env_and_the_program_found_on_path() {
    let mut image = merged_usr();
    image.executable("/usr/bin/env", b"not really elf");
    image.executable("/usr/local/bin/python3", b"#!/bin/sh\n");
    image.executable("/usr/bin/python3", b"shadowed by /usr/local/bin");
    image.executable("/usr/bin/sh", b"shell");
    image.executable("/app/run.py", b"#!/usr/bin/env python3\nprint(1)\n");
    let env = ["PATH=/usr/local/bin:/usr/bin".to_string()];
    let closure = run(&image, &[access("/app/run.py", AccessKind::Exec)], &env);
    let shebang = Reason::Shebang {
        of: "/app/run.py".into(),
    };
    assert!(reasons(&closure, "/usr/bin/env").contains(&shebang));
    assert!(reasons(&closure, "/usr/local/bin/python3").contains(&shebang));
    assert!(!closure.kept.contains("/usr/bin/python3"));
    // The interpreter is itself a script: its interpreter follows, through the /bin symlink.
    assert!(reasons(&closure, "/usr/bin/sh").contains(&Reason::Shebang {
        of: "/usr/local/bin/python3".into()
    }));
    assert!(reasons(&closure, "/bin").contains(&Reason::SymlinkHop {
        of: "/bin/sh".into()
    }));
    assert_eq!(closure.stats.scripts, 2);
}

#[test]
fn env_shebang_uses_default_path_when_image_sets_none() {
    let mut image = merged_usr();
    image.executable("/usr/bin/env", b"env");
    image.executable("/usr/bin/node", b"node");
    image.executable("/srv/app.js", b"#!/usr/bin/env node\n");
    let closure = run(&image, &[access("/srv/app.js", AccessKind::Exec)], &[]);
    assert!(closure.kept.contains("/usr/bin/node"));
}

#[test]
fn non_executable_hash_bang_file_is_data() {
    let mut image = merged_usr();
    image.executable("/usr/bin/bash", b"bash");
    image.file("/etc/profile.d/x.sh", b"#!/usr/bin/bash\n");
    let closure = run(
        &image,
        &[access("/etc/profile.d/x.sh", AccessKind::Open)],
        &[],
    );
    assert!(!closure.kept.contains("/usr/bin/bash"));
}

#[test]
fn runtime_files_kept_and_bind_mounted_ones_not() {
    let mut image = merged_usr();
    for file in [
        "/etc/passwd",
        "/etc/group",
        "/etc/nsswitch.conf",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/shadow",
    ] {
        image.file(file, b"x");
    }
    let closure = run(&image, &[], &[]);
    for kept in ["/etc/passwd", "/etc/group", "/etc/nsswitch.conf"] {
        assert!(
            matches!(reasons(&closure, kept)[0], Reason::Runtime { .. }),
            "{kept}"
        );
    }
    for dropped in ["/etc/hosts", "/etc/resolv.conf", "/etc/shadow"] {
        assert!(!closure.kept.contains(dropped), "{dropped}");
    }
    assert!(reasons(&closure, "/etc").contains(&Reason::ParentDir));
}

#[test]
fn hard_link_keeps_its_target() {
    let mut image = merged_usr();
    image.executable("/usr/bin/perl5.36", b"#!/usr/bin/sh\n");
    image.hardlink("/usr/bin/perl", "/usr/bin/perl5.36");
    image.executable("/usr/bin/sh", b"sh");
    let closure = run(&image, &[access("/usr/bin/perl", AccessKind::Exec)], &[]);
    assert!(
        reasons(&closure, "/usr/bin/perl5.36").contains(&Reason::HardlinkTarget {
            of: "/usr/bin/perl".into()
        })
    );
    // The content behind the link is analysed once, through either name.
    assert!(closure.kept.contains("/usr/bin/sh"));
}

#[test]
fn opened_directory_is_kept_without_its_children() {
    let mut image = merged_usr();
    image.file("/usr/share/zoneinfo/UTC", b"TZif");
    let closure = run(
        &image,
        &[access("/usr/share/zoneinfo", AccessKind::Open)],
        &[],
    );
    assert!(matches!(
        reasons(&closure, "/usr/share/zoneinfo")[0],
        Reason::Traced { .. }
    ));
    assert!(!closure.kept.contains("/usr/share/zoneinfo/UTC"));
}

#[test]
fn runtime_mounts_and_missing_paths_are_ignored() {
    let mut image = merged_usr();
    image.dir("/proc");
    image.dir("/dev");
    image.file("/dev/special-in-image", b"");
    let traced = [
        access("/proc/self/maps", AccessKind::Open),
        access("/sys/fs/cgroup/cpu.max", AccessKind::Open),
        access("/dev/null", AccessKind::Open),
        access("/dev/special-in-image", AccessKind::Open),
        access("/nonexistent/x", AccessKind::Stat),
    ];
    let closure = run(&image, &traced, &[]);
    assert!(!closure.kept.contains("/proc"));
    assert!(!closure.kept.contains("/sys"));
    assert!(closure.kept.contains("/dev/special-in-image"));
    assert_eq!(closure.stats.traced_paths, 5);
    assert_eq!(closure.stats.traced_not_in_image, 4);
}

#[test]
fn readlink_only_keeps_the_link_not_its_target() {
    let mut image = merged_usr();
    image.file("/etc/alternatives-target", b"t");
    image.symlink("/etc/link", "/etc/alternatives-target");
    let closure = run(&image, &[access("/etc/link", AccessKind::Readlink)], &[]);
    assert!(closure.kept.contains("/etc/link"));
    assert!(!closure.kept.contains("/etc/alternatives-target"));
    let closure = run(
        &image,
        &[
            access("/etc/link", AccessKind::Readlink),
            access("/etc/link", AccessKind::Open),
        ],
        &[],
    );
    assert_eq!(
        reasons(&closure, "/etc/alternatives-target"),
        [Reason::Traced {
            kinds: vec![AccessKind::Open, AccessKind::Readlink]
        }]
    );
}

#[test]
fn extra_paths_are_kept_like_traced_ones() {
    let mut image = merged_usr();
    image.file("/usr/lib/x86_64-linux-gnu/plugin.conf", b"x");
    let rule = Reason::Rule {
        rule: "--include-path".into(),
    };
    let closure = compute(
        &image,
        &ClosureInput {
            traced: &[],
            env: &[],
            extra_paths: vec![
                ("/lib/x86_64-linux-gnu/plugin.conf".into(), rule.clone()),
                ("/missing".into(), rule.clone()),
            ],
            app_closure: crate::closure::lang::AppClosure::Off,
            ..Default::default()
        },
    );
    assert_eq!(
        reasons(&closure, "/usr/lib/x86_64-linux-gnu/plugin.conf"),
        [rule]
    );
    assert!(closure.kept.contains("/lib"));
    assert_eq!(closure.warnings.len(), 1);
}

#[test]
fn symlink_loop_in_trace_ends_cleanly() {
    let mut image = merged_usr();
    image.symlink("/etc/a", "b");
    image.symlink("/etc/b", "a");
    let closure = run(&image, &[access("/etc/a", AccessKind::Open)], &[]);
    assert!(!closure.kept.contains("/etc/a"));
    assert_eq!(closure.stats.traced_not_in_image, 1);
}

#[test]
fn garbage_elf_is_a_warning_not_a_failure() {
    let mut image = merged_usr();
    let mut garbage = b"\x7fELF\x02\x01\x01".to_vec();
    garbage.resize(200, 0xff);
    image.executable("/usr/bin/broken", &garbage);
    let closure = run(&image, &[access("/usr/bin/broken", AccessKind::Exec)], &[]);
    assert!(closure.kept.contains("/usr/bin/broken"));
    assert!(closure.unresolved_needs.is_empty());
    assert_eq!(closure.warnings.len(), 1, "{:?}", closure.warnings);
    assert_eq!(closure.warnings[0].path, "/usr/bin/broken");
}

#[test]
fn closure_over_thousands_of_traced_paths_is_fast() {
    let Some(mut image) = host_ls_image() else {
        eprintln!("skipping: host lacks Debian's ls and libraries");
        return;
    };
    let mut traced = Vec::new();
    for i in 0..5000 {
        let path = format!("/usr/share/app/d{}/f{i}", i % 50);
        image.file(&path, b"data");
        traced.push(access(&path, AccessKind::Open));
        traced.push(access(
            &format!("/usr/share/app/missing{i}"),
            AccessKind::Stat,
        ));
    }
    for i in 0..100 {
        let copy = format!("/usr/bin/ls{i}");
        image.executable(&copy, &image.contents["/usr/bin/ls"].clone());
        traced.push(access(&copy, AccessKind::Exec));
    }
    let started = std::time::Instant::now();
    let closure = run(&image, &traced, &[]);
    let elapsed = started.elapsed();
    assert!(closure.unresolved_needs.is_empty());
    assert!(closure.kept.len() > 5000);
    eprintln!("closure over {} accesses: {elapsed:?}", traced.len());
    // Generous for debug builds on a loaded 2-core machine; release is ~10x faster.
    assert!(elapsed < std::time::Duration::from_secs(2), "{elapsed:?}");
}

/// Builds C sources in a temp dir with `cc`; `None` (test skipped) when cc is missing.
struct CBuild {
    dir: tempfile::TempDir,
}

impl CBuild {
    fn new() -> Option<Self> {
        compiler_available().then(|| Self {
            dir: tempfile::tempdir().expect("temp dir"),
        })
    }

    /// Compiles `source` into `output` with extra `args`; returns the output's bytes.
    fn cc(&self, output: &str, source: &str, args: &[&str]) -> Vec<u8> {
        let src = self.dir.path().join(format!("{output}.c"));
        std::fs::write(&src, source).unwrap();
        let out = self.dir.path().join(output);
        let status = std::process::Command::new("cc")
            .current_dir(self.dir.path())
            .arg("-o")
            .arg(&out)
            .arg(&src)
            .arg(format!("-L{}", self.dir.path().display()))
            .arg(format!("-Wl,-rpath-link,{}", self.dir.path().display()))
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "cc {output} {args:?}");
        std::fs::read(out).unwrap()
    }

    /// app → liba.so → libb.so, the app's search path set by `path_flag`.
    fn chain(&self, path_flag: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let shared = ["-shared", "-fPIC"];
        let libb = self.cc("libb.so", "int b(void) { return 1; }\n", &shared);
        let liba = self.cc(
            "liba.so",
            "int b(void);\nint a(void) { return b(); }\n",
            &[&shared[..], &["-lb"]].concat(),
        );
        let app = self.cc(
            "app",
            "int a(void);\nint main(void) { return a(); }\n",
            &["-la", path_flag],
        );
        (app, liba, libb)
    }
}

fn image_with_chain(app: &[u8], liba: &[u8], libb: &[u8]) -> Option<FakeImage> {
    let mut image = host_ls_image()?;
    image.executable("/opt/app/bin/app", app);
    image.executable("/opt/app/lib/liba.so", liba);
    image.executable("/opt/app/lib/libb.so", libb);
    Some(image)
}

/// ld.so searches the DT_RPATH of every object up the loading chain, so libb (needed by liba,
/// which has no search path of its own) is found through the executable's RPATH.
#[test]
fn rpath_of_the_executable_applies_to_libraries_it_loads() {
    let Some(build) = CBuild::new() else { return };
    let (app, liba, libb) = build.chain("-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib");
    let Some(image) = image_with_chain(&app, &liba, &libb) else {
        eprintln!("skipping: host lacks Debian's libc");
        return;
    };
    assert_eq!(elf::parse_elf(&app).unwrap().rpath, ["$ORIGIN/../lib"]);
    let closure = run(&image, &[access("/opt/app/bin/app", AccessKind::Exec)], &[]);
    assert!(
        reasons(&closure, "/opt/app/lib/libb.so").contains(&Reason::ElfNeeded {
            of: "/opt/app/lib/liba.so".into(),
            soname: "libb.so".into(),
        })
    );
    // liba analysed on its own would not find libb, but one loading context did: not reported.
    assert!(
        closure.unresolved_needs.is_empty(),
        "{:?}",
        closure.unresolved_needs
    );
}

/// DT_RUNPATH only applies to the object's own needs: ld.so does not find libb through the
/// executable's RUNPATH, and neither must the closure (the report says so instead).
#[test]
fn runpath_of_the_executable_does_not_apply_to_its_libraries() {
    let Some(build) = CBuild::new() else { return };
    let (app, liba, libb) = build.chain("-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib");
    let Some(image) = image_with_chain(&app, &liba, &libb) else {
        eprintln!("skipping: host lacks Debian's libc");
        return;
    };
    let closure = run(&image, &[access("/opt/app/bin/app", AccessKind::Exec)], &[]);
    assert!(closure.kept.contains("/opt/app/lib/liba.so"));
    assert_eq!(
        closure.unresolved_needs,
        [UnresolvedNeed {
            of: "/opt/app/lib/liba.so".into(),
            soname: "libb.so".into()
        }]
    );
}

/// musl's loader searches /usr/local/lib by default, which glibc's does not.
#[test]
fn musl_executable_searches_musl_default_dirs() {
    let Some(build) = CBuild::new() else { return };
    let (_, liba, libb) = build.chain("-O0");
    let musl_app = build.cc(
        "musl-app",
        "int a(void);\nint main(void) { return a(); }\n",
        &["-la", "-Wl,--dynamic-linker=/lib/ld-musl-x86_64.so.1"],
    );
    let mut image = FakeImage::new();
    image.executable("/lib/ld-musl-x86_64.so.1", &libb);
    image.symlink("/lib/libc.so.6", "ld-musl-x86_64.so.1");
    image.executable("/app", &musl_app);
    image.executable("/usr/local/lib/liba.so", &liba);
    image.executable("/usr/local/lib/libb.so", &libb);
    let closure = run(&image, &[access("/app", AccessKind::Exec)], &[]);
    assert!(
        closure.unresolved_needs.is_empty(),
        "{:?}",
        closure.unresolved_needs
    );
    assert!(matches!(
        reasons(&closure, "/lib/ld-musl-x86_64.so.1")[0],
        Reason::ElfInterpreter { .. }
    ));
    assert!(closure.kept.contains("/usr/local/lib/libb.so"));
}

/// The CPU the slim image runs on is unknown, so a glibc-hwcaps copy is kept beside the baseline.
#[test]
fn glibc_hwcaps_variants_are_kept_with_the_baseline() {
    let Some(mut image) = host_ls_image() else {
        eprintln!("skipping: host lacks Debian's ls and libraries");
        return;
    };
    let selinux = image.contents["/usr/lib/x86_64-linux-gnu/libselinux.so.1"].clone();
    let variant = "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libselinux.so.1";
    image.executable(variant, &selinux);
    let closure = run(&image, &[access("/usr/bin/ls", AccessKind::Exec)], &[]);
    let needed = Reason::ElfNeeded {
        of: "/usr/bin/ls".into(),
        soname: "libselinux.so.1".into(),
    };
    assert!(reasons(&closure, variant).contains(&needed));
    assert!(reasons(&closure, "/usr/lib/x86_64-linux-gnu/libselinux.so.1").contains(&needed));
    assert!(
        closure.unresolved_needs.is_empty(),
        "{:?}",
        closure.unresolved_needs
    );
}

#[test]
fn preloaded_libraries_from_env_and_ld_so_preload_are_kept() {
    let mut image = merged_usr();
    image.executable("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", b"not elf");
    image.executable("/opt/hook.so", b"not elf");
    image.file("/etc/ld.so.preload", b"# comment\n/opt/hook.so\n");
    let env = ["LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /missing.so".to_string()];
    let closure = run(&image, &[], &env);
    assert!(matches!(
        reasons(&closure, "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")[0],
        Reason::Runtime { .. }
    ));
    assert!(matches!(
        reasons(&closure, "/opt/hook.so")[0],
        Reason::Runtime { .. }
    ));
    assert_eq!(
        closure
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["/missing.so: LD_PRELOAD names it but it is not in the image"]
    );
}

/// nginx `mkdir`s /var/lib/nginx/body and creates /var/log/nginx/error.log at start; the slim
/// image lacked the existing parents and nginx died with ENOENT.
#[test]
fn missing_traced_paths_keep_their_existing_parent_dirs() {
    let mut image = FakeImage::new();
    for dir in [
        "/var",
        "/var/lib",
        "/var/lib/nginx",
        "/var/log",
        "/var/log/nginx",
        "/var/cache",
    ] {
        image.dir(dir);
    }
    image.symlink("/var/run", "/run");
    image.dir("/run");
    let mut mkdir = access("/var/lib/nginx/body", AccessKind::Lookup);
    mkdir.result = Some(0);
    let traced = [
        mkdir,
        access("/var/log/nginx/error.log", AccessKind::Open),
        access("/var/run/nginx.pid", AccessKind::Open),
    ];
    let closure = run(&image, &traced, &[]);
    for dir in ["/var/lib/nginx", "/var/log/nginx", "/run"] {
        assert!(reasons(&closure, dir).contains(&Reason::ParentDir), "{dir}");
    }
    assert!(reasons(&closure, "/var/run")
        .iter()
        .any(|r| matches!(r, Reason::SymlinkHop { .. })));
    assert!(
        !closure.kept.contains("/var/cache"),
        "untouched dirs stay out"
    );
    assert!(!closure.kept.contains("/var/lib/nginx/body"));
}

/// A small Python app image: a venv with a one-module distribution, the stdlib, and an app
/// whose unlinked route imports lazily.
fn python_app_image() -> FakeImage {
    let mut image = FakeImage::new();
    image.executable("/usr/bin/python3.11", b"\x7fELF-not-really");
    image.symlink("/usr/bin/python3", "python3.11");
    image.file("/usr/lib/python3.11/os.py", b"import sys\n");
    image.file(
        "/usr/lib/python3.11/json/__init__.py",
        b"def f():\n    import decimal\n",
    );
    image.file("/usr/lib/python3.11/decimal.py", b"import math\n");
    image.file(
        "/usr/lib/python3.11/csv.py",
        b"import re\nfrom _csv import reader\n",
    );
    image.file("/usr/lib/python3.11/re.py", b"import enum\n");
    image.file("/usr/lib/python3.11/enum.py", b"");
    image.file(
        "/usr/lib/python3.11/lib-dynload/_csv.cpython-311-x86_64-linux-gnu.so",
        b"not an elf",
    );
    image.file(
        "/app/venv/pyvenv.cfg",
        b"home = /usr/bin\nversion = 3.11.2\n",
    );
    image.symlink("/app/venv/bin/python", "/usr/bin/python3");
    let site = "/app/venv/lib/python3.11/site-packages";
    image.file(
        &format!("{site}/tinyweb/__init__.py"),
        b"from . import routing\n",
    );
    image.file(&format!("{site}/tinyweb/routing.py"), b"");
    image.file(&format!("{site}/tinyweb/unused.py"), b"");
    image.file(
        &format!("{site}/tinyweb-1.0.dist-info/RECORD"),
        b"tinyweb/__init__.py,,\ntinyweb/routing.py,,\ntinyweb/unused.py,,\n",
    );
    image.file(
        &format!("{site}/tinyweb-1.0.dist-info/METADATA"),
        b"Name: tinyweb\n",
    );
    image.file(
        "/app/app.py",
        b"import tinyweb\nimport json\n\ndef report():\n    import csv  # only this route\n    return csv\n",
    );
    image
}

fn run_app(image: &FakeImage, mode: lang::AppClosure) -> Closure {
    let traced = [
        access("/app/app.py", AccessKind::Open),
        access("/usr/lib/python3.11/json/__init__.py", AccessKind::Open),
        access(
            "/app/venv/lib/python3.11/site-packages/tinyweb/__init__.py",
            AccessKind::Open,
        ),
    ];
    compute(
        image,
        &ClosureInput {
            traced: &traced,
            env: &["PATH=/app/venv/bin:/usr/bin".to_string()],
            app_files: vec![("/app/app.py".to_string(), app_file())],
            app_closure: mode,
            workdir: "/app",
            ..Default::default()
        },
    )
}

fn app_file() -> Reason {
    Reason::AppFile {
        layer: 1,
        instruction: "COPY app /app".to_string(),
    }
}

#[test]
fn a_lazy_import_in_a_traced_app_file_is_kept_with_what_it_imports_in_turn() {
    let closure = run_app(&python_app_image(), lang::AppClosure::Imports);
    for path in [
        "/usr/lib/python3.11/csv.py",
        "/usr/lib/python3.11/re.py",
        "/usr/lib/python3.11/enum.py",
        "/usr/lib/python3.11/lib-dynload/_csv.cpython-311-x86_64-linux-gnu.so",
    ] {
        assert!(closure.kept.contains(path), "{path} not kept");
    }
    // The traced library's module-level import is not in the trace: it did not run at its
    // load, so it never will; unless the sensor lost events.
    let routing = "/app/venv/lib/python3.11/site-packages/tinyweb/routing.py";
    assert!(!closure.kept.contains(routing));
    let traced = [
        access("/app/app.py", AccessKind::Open),
        access(
            "/app/venv/lib/python3.11/site-packages/tinyweb/__init__.py",
            AccessKind::Open,
        ),
    ];
    let lossy = compute(
        &python_app_image(),
        &ClosureInput {
            traced: &traced,
            app_closure: lang::AppClosure::Imports,
            workdir: "/app",
            trace_lost_events: true,
            ..Default::default()
        },
    );
    assert!(lossy.kept.contains(routing));
    assert!(reasons(&closure, "/usr/lib/python3.11/csv.py")
        .iter()
        .any(|r| matches!(r, Reason::Import { of, .. } if of == "/app/app.py")));
    // A traced stdlib module's function-level imports are not followed.
    assert!(!closure.kept.contains("/usr/lib/python3.11/decimal.py"));
    // Nothing names the unused module of the distribution.
    assert!(!closure
        .kept
        .contains("/app/venv/lib/python3.11/site-packages/tinyweb/unused.py"));
}

#[test]
fn app_closure_off_keeps_only_the_trace() {
    let closure = run_app(&python_app_image(), lang::AppClosure::Off);
    assert!(!closure.kept.contains("/usr/lib/python3.11/csv.py"));
    assert_eq!(closure.stats.sources_scanned, 0);
}

#[test]
fn app_closure_packages_keeps_the_whole_distribution_of_a_kept_file() {
    let closure = run_app(&python_app_image(), lang::AppClosure::Packages);
    let unused = "/app/venv/lib/python3.11/site-packages/tinyweb/unused.py";
    assert!(closure.kept.contains(unused));
    assert!(reasons(&closure, unused)
        .iter()
        .any(|r| matches!(r, Reason::Package { .. })));
}

#[test]
fn a_non_literal_import_is_reported_with_its_file_and_line() {
    let mut image = python_app_image();
    image.file(
        "/app/app.py",
        b"import importlib\n\ndef plugin(name):\n    return importlib.import_module(name)\n",
    );
    let closure = run_app(&image, lang::AppClosure::Imports);
    assert!(
        closure
            .dynamic_loads
            .iter()
            .any(|d| d.path == "/app/app.py" && d.line == 4),
        "{:?}",
        closure.dynamic_loads
    );
}

#[test]
fn a_feature_a_ruby_c_extension_requires_from_c_is_kept() {
    // psych.so's init does rb_require("psych/syntax_error"): no Ruby source names it.
    let mut image = FakeImage::new();
    image.file(
        "/usr/lib/ruby/3.1.0/psych/syntax_error.rb",
        b"module Psych; end\n",
    );
    image.file("/usr/lib/ruby/3.1.0/psych/unrelated.rb", b"");
    image.file(
        "/usr/lib/x86_64-linux-gnu/ruby/3.1.0/psych.so",
        b"\x7fELF\0\0\0Init_psych\0psych/syntax_error\0Psych::Parser\0/usr/lib\0",
    );
    let traced = [access(
        "/usr/lib/x86_64-linux-gnu/ruby/3.1.0/psych.so",
        AccessKind::Open,
    )];
    let closure = compute(
        &image,
        &ClosureInput {
            traced: &traced,
            app_closure: lang::AppClosure::Imports,
            workdir: "/",
            ..Default::default()
        },
    );
    assert!(closure
        .kept
        .contains("/usr/lib/ruby/3.1.0/psych/syntax_error.rb"));
    assert!(!closure
        .kept
        .contains("/usr/lib/ruby/3.1.0/psych/unrelated.rb"));
}

/// A library the app ran (traced) whose functions import lazily: a helper module that needs
/// nothing new, and a debugger package that brings code of its own.
fn lazy_library_image() -> FakeImage {
    let mut image = python_app_image();
    let site = "/app/venv/lib/python3.11/site-packages";
    image.file(
        &format!("{site}/tinyweb/__init__.py"),
        b"from . import routing\n\ndef serve(debug):\n    from .escape import quote\n    \
          if debug:\n        from .debug import Debugger\n",
    );
    image.file(
        &format!("{site}/tinyweb/escape.py"),
        b"import re\nfrom . import routing\n\ndef quote():\n    import csv\n",
    );
    image.file(
        &format!("{site}/tinyweb/debug/__init__.py"),
        b"import uuid\n\ndef console():\n    import code\n",
    );
    image.file(
        "/usr/lib/python3.11/uuid.py",
        b"import platform\n\ndef node():\n    import subprocess\n",
    );
    image.file("/usr/lib/python3.11/platform.py", b"");
    image.file("/usr/lib/python3.11/subprocess.py", b"");
    image.file("/usr/lib/python3.11/code.py", b"import codeop\n");
    image.file("/usr/lib/python3.11/codeop.py", b"");
    image
}

fn run_library(image: &FakeImage, app_source: &[u8]) -> Closure {
    let mut image = image.clone();
    image.file("/app/app.py", app_source);
    let site = "/app/venv/lib/python3.11/site-packages";
    let traced = [
        access("/app/app.py", AccessKind::Open),
        access(&format!("{site}/tinyweb/__init__.py"), AccessKind::Open),
        access(&format!("{site}/tinyweb/routing.py"), AccessKind::Open),
        access("/usr/lib/python3.11/re.py", AccessKind::Open),
    ];
    compute(
        &image,
        &ClosureInput {
            traced: &traced,
            env: &["PATH=/app/venv/bin:/usr/bin".to_string()],
            app_files: vec![("/app/app.py".to_string(), app_file())],
            app_closure: lang::AppClosure::Imports,
            workdir: "/app",
            ..Default::default()
        },
    )
}

#[test]
fn a_traced_librarys_lazy_import_is_followed_when_it_brings_no_new_code() {
    let closure = run_library(&lazy_library_image(), b"import tinyweb\n");
    let site = "/app/venv/lib/python3.11/site-packages";
    // serve()'s helper imports only what is kept: it is followed (not its own lazy import).
    assert!(closure.kept.contains(&format!("{site}/tinyweb/escape.py")));
    assert!(!closure.kept.contains("/usr/lib/python3.11/csv.py"));
    // The debugger would bring uuid and platform: a part of the library nothing switched on.
    for path in [
        format!("{site}/tinyweb/debug/__init__.py"),
        "/usr/lib/python3.11/uuid.py".to_string(),
        "/usr/lib/python3.11/platform.py".to_string(),
    ] {
        assert!(!closure.kept.contains(&path), "{path} kept");
    }
    assert!(
        closure
            .lazy_loads_not_followed
            .iter()
            .any(|load| load.path == format!("{site}/tinyweb/__init__.py")
                && load.message.starts_with("from .debug import Debugger")),
        "{:?}",
        closure.lazy_loads_not_followed
    );
}

#[test]
fn the_apps_lazy_imports_are_followed_all_the_way_even_into_a_library() {
    // The app itself imports the debugger in a handler: its code paths are the app's.
    let closure = run_library(
        &lazy_library_image(),
        b"import tinyweb\n\ndef debug_route():\n    from tinyweb.debug import console\n    console()\n",
    );
    for path in [
        "/app/venv/lib/python3.11/site-packages/tinyweb/debug/__init__.py",
        "/usr/lib/python3.11/uuid.py",
        "/usr/lib/python3.11/platform.py",
        "/usr/lib/python3.11/subprocess.py",
        "/usr/lib/python3.11/code.py",
        "/usr/lib/python3.11/codeop.py",
    ] {
        assert!(closure.kept.contains(path), "{path} not kept");
    }
    assert!(closure.lazy_loads_not_followed.is_empty());
}

/// `tinyweb` of [`lazy_library_image`] installed with `pip install /src` (PEP 610
/// `direct_url.json` with `dir_info`), its source directory removed after: the app, packaged.
fn local_dist_image(direct_url: &str) -> FakeImage {
    let mut image = lazy_library_image();
    let site = "/app/venv/lib/python3.11/site-packages";
    let info = format!("{site}/tinyweb-1.0.dist-info");
    image.file(
        &format!("{site}/tinyweb/templates/report.html"),
        b"<p>{{ x }}</p>",
    );
    image.file(
        &format!("{info}/METADATA"),
        b"Name: tinyweb\nVersion: 1.0\n",
    );
    image.file(
        &format!("{info}/RECORD"),
        b"tinyweb/__init__.py,,\ntinyweb/escape.py,,\ntinyweb/routing.py,,\n\
          tinyweb/debug/__init__.py,,\ntinyweb/templates/report.html,,\n\
          tinyweb-1.0.dist-info/METADATA,,\ntinyweb-1.0.dist-info/RECORD,,\n",
    );
    image.file(&format!("{info}/direct_url.json"), direct_url.as_bytes());
    image
}

#[test]
fn a_distribution_pip_installed_from_a_local_directory_is_the_apps_own() {
    let image = local_dist_image(r#"{"url": "file:///src", "dir_info": {}}"#);
    let closure = run_library(&image, b"import tinyweb\n");
    let site = "/app/venv/lib/python3.11/site-packages";
    // Kept whole (its template), and scanned like the app: the debugger its handler imports
    // lazily is followed with what it imports in turn.
    for path in [
        format!("{site}/tinyweb/templates/report.html"),
        format!("{site}/tinyweb/debug/__init__.py"),
        "/usr/lib/python3.11/uuid.py".to_string(),
        "/usr/lib/python3.11/csv.py".to_string(),
    ] {
        assert!(closure.kept.contains(&path), "{path} not kept");
    }
    assert!(reasons(&closure, &format!("{site}/tinyweb/escape.py"))
        .iter()
        .any(|r| matches!(r, Reason::AppFile { instruction, .. }
            if instruction == "tinyweb==1.0 installed from the local directory /src")));
    assert!(closure.lazy_loads_not_followed.is_empty());
}

#[test]
fn editable_and_archive_installs_are_not_taken_for_the_app() {
    for direct_url in [
        r#"{"url": "file:///src", "dir_info": {"editable": true}}"#,
        r#"{"url": "file:///wheels/tinyweb-1.0-py3-none-any.whl", "archive_info": {}}"#,
        r#"{"url": "https://example.invalid/x.tar.gz", "archive_info": {}}"#,
    ] {
        let closure = run_library(&local_dist_image(direct_url), b"import tinyweb\n");
        // A library the app ran: its debugger's lazy import is not followed.
        assert!(
            !closure.kept.contains("/usr/lib/python3.11/uuid.py"),
            "{direct_url}"
        );
        assert!(!closure.lazy_loads_not_followed.is_empty());
    }
}

#[test]
fn code_copied_into_a_system_tree_is_scanned_like_the_apps() {
    // `COPY shop.py /usr/local/bin/`: traced, and its handler's lazy import brings new code.
    let mut image = lazy_library_image();
    image.executable(
        "/usr/local/bin/shop.py",
        b"#!/usr/bin/python3\nimport tinyweb\n\ndef debug():\n    import code\n",
    );
    let traced = [access("/usr/local/bin/shop.py", AccessKind::Exec)];
    let input = |own_code: Vec<String>| ClosureInput {
        traced: &traced,
        env: &[],
        own_code,
        app_closure: lang::AppClosure::Imports,
        ..Default::default()
    };
    let closure = compute(&image, &input(vec!["/usr/local/bin/shop.py".into()]));
    assert!(closure.kept.contains("/usr/lib/python3.11/code.py"));
    assert!(closure.kept.contains("/usr/lib/python3.11/codeop.py"));
    // Without knowing it is the app's, it is a traced library file: the lazy import is not
    // followed, and the report says so.
    let closure = compute(&image, &input(Vec::new()));
    assert!(!closure.kept.contains("/usr/lib/python3.11/code.py"));
    assert!(!closure.lazy_loads_not_followed.is_empty());
}

#[test]
fn a_stdlib_module_the_apps_route_imports_brings_what_loading_it_runs_not_its_functions_imports() {
    // The route imports difflib lazily: difflib's module-level import runs then (kept), but
    // the doctest its test helper imports would bring a tree of new code (not followed), while
    // a function-level import of something already kept is followed.
    let mut image = python_app_image();
    image.file(
        "/usr/lib/python3.11/difflib.py",
        b"import heapq\n\ndef _test():\n    import doctest\n\ndef m():\n    import re\n",
    );
    image.file("/usr/lib/python3.11/heapq.py", b"from _heapq import *\n");
    image.file("/usr/lib/python3.11/_heapq.py", b"");
    image.file("/usr/lib/python3.11/doctest.py", b"import pdb\n");
    image.file("/usr/lib/python3.11/pdb.py", b"");
    image.file(
        "/app/app.py",
        b"import tinyweb\nimport json\n\ndef diff():\n    import difflib\n    import csv\n",
    );
    let closure = run_app(&image, lang::AppClosure::Imports);
    for path in ["difflib", "heapq", "_heapq", "csv", "re", "enum"] {
        let path = format!("/usr/lib/python3.11/{path}.py");
        assert!(closure.kept.contains(&path), "{path} not kept");
    }
    for path in ["doctest", "pdb"] {
        let path = format!("/usr/lib/python3.11/{path}.py");
        assert!(!closure.kept.contains(&path), "{path} kept");
    }
    assert!(
        closure
            .lazy_loads_not_followed
            .iter()
            .any(|l| l.path == "/usr/lib/python3.11/difflib.py"),
        "{:?}",
        closure.lazy_loads_not_followed
    );
}
