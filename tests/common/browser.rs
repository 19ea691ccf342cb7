//! Browser tests: a Node script in `tests/browser` drives Debian's chromium through
//! playwright-core against a running platform. Skipped (with a note) where chromium or
//! the script's packages are missing, unless `SHOP_REQUIRE_BROWSER=1` (CI) makes them
//! mandatory.

use std::path::PathBuf;
use std::time::Duration;

use tokio::process::Command;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Runs `tests/browser/<script>` with `args`; panics with its output when it fails.
/// Returns false when the browser tests are skipped here.
pub async fn run(test: &str, script: &str, args: &[&str]) -> bool {
    let chromium = std::env::var("SHOP_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let packages = dir().join("node_modules/playwright-core");
    let required = std::env::var("SHOP_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    if !PathBuf::from(&chromium).exists() || !packages.exists() {
        assert!(
            !required,
            "SHOP_REQUIRE_BROWSER is set but {chromium} or {} is missing (see .ci/run)",
            packages.display()
        );
        eprintln!("{test}: browser test skipped (no chromium or tests/browser/node_modules)");
        return false;
    }
    let run = Command::new("node")
        .arg(dir().join(script))
        .args(args)
        .env("SHOP_CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser test ends in time")
        .expect("node runs");
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What the script measured and checked, for the test's log.
    eprintln!("{test}: {}", String::from_utf8_lossy(&out.stdout).trim());
    true
}
