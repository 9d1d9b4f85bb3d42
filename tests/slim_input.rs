//! End to end: where `minify build` gets its source image besides the daemon. `--pull` from
//! real registries (Debian's `docker-registry`, the CNCF distribution server, run on loopback
//! with a temporary config: one open, one behind htpasswd basic auth, logged into with
//! `--registry-account/--registry-secret` and with a `--docker-config-path` holding `auths`),
//! and `--dockerfile` (the fat image built through the daemon from a context with a
//! `.dockerignore`, then minified; `--delete-generated-fat-image` removes only what minify built;
//! docker-slim's `--path-perms-file` and `--include-path PATH:MODE#UID#GID` set modes and owners
//! in the slim image).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Small (a static binary FROM scratch): pushes and builds take well under a second.
const STATIC: &str = "minify-fixture/static:1";
const NGINX: &str = "minify-fixture/nginx:1";
const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A registry process on 127.0.0.1 with its storage in a temp dir; killed and removed on drop,
/// also when the test panics.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A bcrypt htpasswd line (the only hash the registry accepts): `htpasswd -B`, else python3's
/// bcrypt module.
fn htpasswd_line(user: &str, password: &str) -> Result<String, String> {
    if let Ok(out) = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
    {
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import bcrypt,sys; print(sys.argv[1] + ':' + bcrypt.hashpw(sys.argv[2].encode(), bcrypt.gensalt()).decode())",
            user,
            password,
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err("neither `htpasswd -B` (apache2-utils) nor python3 bcrypt".into())
    }
}

/// Starts a registry (with basic auth for `login`); `None` (skip) outside CI without one.
fn registry(login: Option<(&str, &str)>) -> Option<Registry> {
    let available = if Path::new(REGISTRY_BIN).exists() {
        Ok(())
    } else {
        Err(format!(
            "{REGISTRY_BIN} missing (apt-get install docker-registry)"
        ))
    };
    if !require("a local registry (docker-registry)", available) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.path().join("data").display()
    );
    if let Some((user, password)) = login {
        let line = htpasswd_line(user, password);
        if !require(
            "a bcrypt htpasswd generator",
            line.as_ref().map(|_| ()).map_err(Clone::clone),
        ) {
            return None;
        }
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(&htpasswd, format!("{}\n", line.unwrap())).unwrap();
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: minify-test\n    path: {}\n",
            htpasswd.display()
        ));
    }
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, config).unwrap();
    let child = Command::new(REGISTRY_BIN)
        .arg("serve")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let registry = Registry {
        child,
        port,
        _dir: dir,
    };
    // Ready once /v2/ answers (200 open, 401 behind auth).
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        match get(port, "/v2/") {
            Ok(answer) if answer.status == 200 || answer.status == 401 => break,
            _ if Instant::now() > until => panic!("the registry on port {port} never answered"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    Some(registry)
}

/// `docker` with the CLI config in `config_dir` (never the user's own config).
fn docker_with(config_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .arg("--config")
        .arg(config_dir)
        .args(args)
        .output()
        .unwrap()
}

/// Runs minify with `DOCKER_CONFIG` on an empty dir, so no credential of this machine's user
/// takes part unless a flag names it.
fn minify_hermetic(empty_config: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_minify"))
        .args(args)
        .env("DOCKER_CONFIG", empty_config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Tags `source` as `reference` in the registry, pushes it (logged in through `config_dir`),
/// and removes the local tag again, so that only a pull can bring it back.
fn push(config_dir: &Path, source: &str, reference: &str) {
    docker(&["tag", source, reference]);
    let out = docker_with(config_dir, &["push", reference]);
    let _ = Command::new("docker").args(["rmi", reference]).output();
    assert!(
        out.status.success(),
        "docker push {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pull_from_loopback_registries_open_and_behind_a_login() {
    if !require_fixture(STATIC) {
        return;
    }
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let work = tempfile::tempdir().unwrap();
    let empty = work.path().join("empty-config");
    std::fs::create_dir(&empty).unwrap();
    let report = work.path().join("r.json");
    let report = report.to_str().unwrap();
    let tag = unique("t");

    // An open registry.
    let Some(open) = registry(None) else { return };
    let reference = format!("127.0.0.1:{}/minify-test/static:{tag}", open.port);
    push(&empty, STATIC, &reference);
    cleanup.image(&reference);
    let slim = format!("minify-test/pulled.slim:{tag}");
    cleanup.image(&slim);
    let (code, stderr) = minify_hermetic(
        &empty,
        &["build", &reference, "--tag", &slim, "--report", report],
    );
    assert_eq!(
        code, 3,
        "without --pull a missing image stays an error: {stderr}"
    );
    assert!(stderr.contains("--pull"), "{stderr}");
    assert!(!image_exists(&reference));
    let (code, stderr) = minify_hermetic(
        &empty,
        &[
            "build",
            "--pull",
            "--show-plogs",
            &reference,
            "--tag",
            &slim,
            "--report",
            report,
            "--verify",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("pull: "),
        "--show-plogs prints progress: {stderr}"
    );
    assert!(
        image_exists(&reference),
        "the pulled image stays: it is the source"
    );
    assert!(image_exists(&slim));
    let notes: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    assert_eq!(notes["notes"]["source_image"], "pulled by --pull");

    // A registry behind basic auth: pushed to with `docker login` in a config of our own.
    let Some(locked) = registry(Some(("minify", "s3cret"))) else {
        return;
    };
    let host = format!("127.0.0.1:{}", locked.port);
    let login_dir = work.path().join("login-config");
    std::fs::create_dir(&login_dir).unwrap();
    let mut login = Command::new("docker")
        .arg("--config")
        .arg(&login_dir)
        .args(["login", "-u", "minify", "--password-stdin", &host])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    login.stdin.take().unwrap().write_all(b"s3cret").unwrap();
    let login = login.wait_with_output().unwrap();
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let reference = format!("{host}/minify-test/static:{tag}");
    push(&login_dir, STATIC, &reference);
    cleanup.image(&reference);
    let pull_with = |extra: &[&str]| {
        let mut args = vec![
            "build", "--pull", &reference, "--tag", &slim, "--report", report,
        ];
        args.extend_from_slice(extra);
        minify_hermetic(&empty, &args)
    };
    let (code, stderr) = pull_with(&[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("pulling") && stderr.contains("--registry-account"),
        "no credentials: a clear error: {stderr}"
    );
    let (code, stderr) = pull_with(&["--registry-account", "minify", "--registry-secret", "wrong"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("pulling"), "{stderr}");
    assert!(!image_exists(&reference));
    let (code, stderr) = pull_with(&[
        "--registry-account",
        "minify",
        "--registry-secret",
        "s3cret",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(image_exists(&reference));
    docker(&["rmi", &reference]);
    // The config `docker login` wrote holds `auths` with the base64 `auth`.
    let written = std::fs::read_to_string(login_dir.join("config.json")).unwrap();
    assert!(written.contains("\"auth\""), "{written}");
    let (code, stderr) = pull_with(&["--docker-config-path", login_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(image_exists(&reference));
    drop(cleanup);
    assert_eq!(leftover_containers(), "", "minify left containers behind");
}

/// A context: an nginx page of its own (COPY), a build arg written into the page, and a
/// `.dockerignore`d file the Dockerfile checks is absent (the build fails if it is sent).
fn context(dir: &Path) -> PathBuf {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(ctx.join("site")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {NGINX}\nARG GREETING=unset\nCOPY site/ /var/www/html/\nCOPY . /srv/ctx/\n\
             RUN test ! -e /srv/ctx/secret.env && test -e /srv/ctx/site/index.html \\\n \
             && echo \"$GREETING\" > /var/www/html/greeting.txt\n"
        ),
    )
    .unwrap();
    std::fs::write(
        ctx.join("site/index.html"),
        "<html><body><a href=\"/greeting.txt\">hi</a></body></html>\n",
    )
    .unwrap();
    std::fs::write(ctx.join("secret.env"), "TOKEN=x\n").unwrap();
    std::fs::write(ctx.join(".dockerignore"), "*.env\n").unwrap();
    ctx
}

/// The mode bits and owner of `path` in `image` (from the tar `docker cp` gives of a created,
/// never started container).
fn mode_and_owner(cleanup: &mut Cleanup, image: &str, path: &str) -> (u32, u64, u64) {
    let name = unique("minify-test-perms");
    cleanup.container(&name);
    docker(&["create", "--name", &name, image]);
    let out = Command::new("docker")
        .args(["cp", &format!("{name}:{path}"), "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = Command::new("docker").args(["rm", &name]).output();
    let mut archive = tar::Archive::new(&out.stdout[..]);
    let entry = archive.entries().unwrap().next().unwrap().unwrap();
    let header = entry.header();
    (
        header.mode().unwrap() & 0o7777,
        header.uid().unwrap(),
        header.gid().unwrap(),
    )
}

#[test]
fn a_dockerfile_is_built_then_minified_and_only_the_built_fat_image_is_deleted() {
    if !require_fixture(NGINX) {
        return;
    }
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let work = tempfile::tempdir().unwrap();
    let ctx = context(work.path());
    let ctx = ctx.to_str().unwrap();
    let report = work.path().join("r.json");
    let report = report.to_str().unwrap();
    let tag = unique("t");
    let fat = format!("minify-test/fat:{tag}");
    let slim = format!("minify-test/fat.slim:{tag}");
    // The nginx workers (www-data, gid 33) still read the page through its group.
    let perms_file = work.path().join("perms.txt");
    std::fs::write(&perms_file, "/var/www/html/greeting.txt:0640#0#33\n").unwrap();
    cleanup.image(&fat);
    cleanup.image(&slim);
    let (code, _, stderr) = minify(&[
        "build",
        "--dockerfile",
        "Dockerfile",
        "--tag-fat",
        &fat,
        "--tag",
        &slim,
        "--cbo-build-arg",
        "GREETING=hello from a build arg",
        "--cbo-label",
        "dev.example.built-by=minify-test",
        "--include-path",
        "/srv/ctx/site:0750#33#33",
        "--path-perms-file",
        perms_file.to_str().unwrap(),
        "--report",
        report,
        ctx,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        image_exists(&fat),
        "the fat image stays without --delete-generated-fat-image"
    );
    // docker-slim's permissions: set in the slim image, not in the fat one.
    assert_eq!(
        mode_and_owner(&mut cleanup, &slim, "/var/www/html/greeting.txt"),
        (0o640, 0, 33)
    );
    assert_eq!(
        mode_and_owner(&mut cleanup, &slim, "/srv/ctx/site"),
        (0o750, 33, 33)
    );
    assert_eq!(
        mode_and_owner(&mut cleanup, &fat, "/srv/ctx/site"),
        (0o755, 0, 0)
    );
    let label = docker(&[
        "image",
        "inspect",
        &fat,
        "--format",
        "{{index .Config.Labels \"dev.example.built-by\"}}",
    ]);
    assert_eq!(label, "minify-test", "--cbo-label");
    // The slim image answers like the fat one, the page the COPY added and the build arg's file.
    let fat_port = run_published(&mut cleanup, &fat, 80);
    let slim_port = run_published(&mut cleanup, &slim, 80);
    wait_answering(fat_port, Duration::from_secs(20));
    wait_answering(slim_port, Duration::from_secs(20));
    for path in ["/", "/greeting.txt"] {
        let (a, b) = (get(fat_port, path).unwrap(), get(slim_port, path).unwrap());
        assert_eq!((a.status, &a.body), (b.status, &b.body), "GET {path}");
    }
    let greeting = get(slim_port, "/greeting.txt").unwrap();
    assert_eq!(greeting.body, b"hello from a build arg\n");

    // The same build again (all cached: the same image id under a second name), deleted after:
    // only that name goes; the first fat image, the base fixture and the slim image stay.
    let fat2 = format!("minify-test/fat2:{tag}");
    let slim2 = format!("minify-test/fat2.slim:{tag}");
    cleanup.image(&fat2);
    cleanup.image(&slim2);
    let (code, _, stderr) = minify(&[
        "build",
        "--dockerfile",
        &format!("{ctx}/Dockerfile"),
        "--dockerfile-context",
        ctx,
        "--tag-fat",
        &fat2,
        "--tag",
        &slim2,
        "--cbo-build-arg",
        "GREETING=hello from a build arg",
        "--cbo-label",
        "dev.example.built-by=minify-test",
        "--delete-generated-fat-image",
        "--report",
        report,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !image_exists(&fat2),
        "--delete-generated-fat-image removed {fat2}"
    );
    assert!(
        image_exists(&fat),
        "an image minify did not build this time stays"
    );
    assert!(image_exists(NGINX), "the base image stays");
    assert!(image_exists(&slim2));

    // A failing build: a clear error with the build's output, exit 3, nothing tagged.
    std::fs::write(
        Path::new(ctx).join("Dockerfile.bad"),
        format!("FROM {NGINX}\nRUN echo minify-bad-step && false\n"),
    )
    .unwrap();
    let fat3 = format!("minify-test/fat3:{tag}");
    cleanup.image(&fat3);
    let (code, _, stderr) = minify(&[
        "build",
        "--dockerfile",
        "Dockerfile.bad",
        "--tag-fat",
        &fat3,
        "--report",
        report,
        ctx,
    ]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("building the fat image") && stderr.contains("minify-bad-step"),
        "{stderr}"
    );
    assert!(!image_exists(&fat3));
    drop(cleanup);
    assert_eq!(leftover_containers(), "", "minify left containers behind");
}
