//! Whether a test may skip for a missing facility: outside CI it prints why and skips; under
//! `CI=true` (or `CI=1`) it fails, so a CI machine without the daemon, the sensor or a tool
//! never turns green by skipping. The one copy of this rule: the library's unit tests use it as
//! `crate::testkit::ci`, the end-to-end tests include this file from `tests/common`.

/// True when running under CI, where a missing facility is a failure, not a skip.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Returns whether the test can go on; panics under CI when it can't.
pub fn require(facility: &str, check: Result<(), String>) -> bool {
    match check {
        Ok(()) => true,
        Err(why) if under_ci() => {
            panic!("{facility} is required under CI=true but unavailable: {why}")
        }
        Err(why) => {
            eprintln!("SKIP: {facility} unavailable ({why}); run integration/setup.sh as root");
            false
        }
    }
}

/// `Ok` when `program arg` runs and exits 0, else why not (for [`require`]).
pub fn tool_check(program: &str, arg: &str) -> Result<(), String> {
    match std::process::Command::new(program).arg(arg).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{program} {arg}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("{program}: {e} (integration/setup.sh installs it)")),
    }
}
