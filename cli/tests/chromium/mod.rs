//! A headless Chromium for the tests that look at a page the way a person
//! does: Debian's `chromium` (or `chromium-browser`) from `PATH`, or
//! `$ELSPETH_CHROMIUM`. When none is there and the test runs as root with
//! `apt-get` (a fresh CI machine), it installs Debian's `chromium`
//! package, saying so; otherwise the test fails saying how to install it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The names Chromium's binary has on Debian and Ubuntu.
const NAMES: [&str; 2] = ["chromium", "chromium-browser"];

/// How long one Chromium command may take before the test gives up on it
/// (a hang guard, not a measurement).
const DEADLINE: Duration = Duration::from_secs(180);

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ELSPETH_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    NAMES.iter().find_map(|n| on_path(n))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn apt_get(args: &[&str]) -> bool {
    eprintln!("chromium: running apt-get {}", args.join(" "));
    Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The Chromium binary, installed first when missing and possible.
pub(crate) fn chromium() -> PathBuf {
    // One install at a time when several tests ask at once.
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = find() {
        return p;
    }
    if is_root() && on_path("apt-get").is_some() {
        eprintln!(
            "chromium: not found on PATH; installing Debian's `chromium` package for the report test"
        );
        if apt_get(&["update", "-q"]) {
            apt_get(&["install", "-y", "-q", "--no-install-recommends", "chromium"]);
        }
    }
    find().unwrap_or_else(|| {
        panic!(
            "this test needs a headless Chromium and none was found on PATH (chromium or \
             chromium-browser), nor could it be installed (that needs root and apt-get). \
             Install it, e.g. `sudo apt-get install chromium` on Debian, \
             `sudo apt-get install chromium-browser` on Ubuntu, or point ELSPETH_CHROMIUM \
             at a Chromium or Chrome binary."
        )
    })
}

/// `chromium --headless` on `page` with `extra` flags: no sandbox (CI
/// runs as root), no GPU, its own profile in `profile`, and every host
/// name unresolvable, so a page that needed the network would show it.
pub(crate) fn headless(page: &Path, profile: &Path, extra: &[&str]) -> Output {
    let url = format!("file://{}", page.display());
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-sync",
            "--disable-background-networking",
            "--disable-component-update",
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Read the pipes on threads so a large DOM cannot block Chromium.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}
