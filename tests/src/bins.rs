//! Workspace binaries, for tests that run services as processes (to SIGKILL them).

use std::path::PathBuf;

/// `target/<profile>/<name>`, next to the test executable's `deps/` directory.
pub fn path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir").to_path_buf();
    let p = dir.join(name);
    assert!(p.exists(), "{} is missing: build the binaries first (scripts/test does `cargo build --bins`)", p.display());
    p
}
