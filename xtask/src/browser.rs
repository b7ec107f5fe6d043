//! `cargo xtask setup-browser`: installs Debian's Chromium, the NSS tools (`certutil`) and
//! `zbarimg` (the browser test's independent QR decoder, package `zbar-tools`) that
//! the Swagger UI browser test (`crates/server/tests/it/swagger_ui.rs`) and `cargo xtask browser`
//! drive. `cargo xtask test`
//! runs it first, so CI always runs that test; without Chromium the test skips loudly.

use std::path::Path;
use std::process::Command;

/// Debian's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";
const CERTUTIL: &str = "/usr/bin/certutil";
const ZBARIMG: &str = "/usr/bin/zbarimg";
const PACKAGES: [&str; 3] = ["chromium", "libnss3-tools", "zbar-tools"];

/// Installs the packages unless the tools are already there.
pub fn setup_browser() -> Result<(), String> {
    if [CHROMIUM, CERTUTIL, ZBARIMG]
        .iter()
        .all(|tool| Path::new(tool).is_file())
    {
        println!("==> browser: {CHROMIUM}, {CERTUTIL} and {ZBARIMG} present");
        return Ok(());
    }
    println!(
        "==> installing {} from Debian's packages (Swagger UI browser test)",
        PACKAGES.join(" ")
    );
    let install = || {
        let mut args = vec!["install", "-y", "--no-install-recommends"];
        args.extend(PACKAGES);
        apt_get(&args)
    };
    if !install() {
        // A fresh machine may not have package lists yet.
        apt_get(&["update"]);
        if !install() {
            return Err(format!(
                "cannot install {0}; install them (apt-get install --no-install-recommends {0}) and retry",
                PACKAGES.join(" ")
            ));
        }
    }
    Ok(())
}

/// Runs `apt-get`, through sudo only when not root (CI runs as root).
pub(crate) fn apt_get(args: &[&str]) -> bool {
    let mut cmd = if is_root() {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    } else {
        let mut cmd = Command::new("sudo");
        cmd.args(["DEBIAN_FRONTEND=noninteractive", "apt-get"]);
        cmd
    };
    cmd.args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}
