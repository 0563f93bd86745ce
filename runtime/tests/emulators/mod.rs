//! The object-storage emulators the tests start: moto's S3 server (PyPI
//! `moto[server]`) and Azurite (npm `azurite`), installed on first use from
//! the project's own files (`tests/emulators/requirements.txt` into
//! `target/emulators-venv`, `tests/emulators/package.json` with
//! `npm ci --prefix tests/emulators`).
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The emulators' virtualenv, created when missing.
pub(crate) fn venv() -> PathBuf {
    let venv = repo().join("target/emulators-venv");
    let ready = ["moto_server", "python"]
        .iter()
        .all(|b| venv.join("bin").join(b).is_file())
        && Command::new(venv.join("bin/python"))
            .args(["-c", "import azure.storage.blob"])
            .status()
            .is_ok_and(|s| s.success());
    if !ready {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "-r"])
                .arg(repo().join("tests/emulators/requirements.txt"))
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ok,
            "could not install the emulators into {}",
            venv.display()
        );
    }
    venv
}

/// A started emulator, stopped when dropped.
pub(crate) struct Emulator {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Drop for Emulator {
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

fn wait_for(port: u16, what: &str) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// moto's S3 server.
pub(crate) fn moto() -> Emulator {
    let port = free_port();
    let child = Command::new(venv().join("bin/moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    wait_for(port, "moto");
    Emulator { child, port }
}

/// Azurite's Blob service, its data in `dir`.
pub(crate) fn azurite(dir: &Path) -> Emulator {
    let emulators = repo().join("tests/emulators");
    let bin = emulators.join("node_modules/.bin/azurite-blob");
    if !bin.is_file() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&emulators)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "could not install Azurite (npm ci --prefix tests/emulators)"
        );
    }
    let port = free_port();
    let child = Command::new(bin)
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--skipApiVersionCheck",
            "--silent",
            "--location",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start azurite-blob");
    wait_for(port, "Azurite");
    Emulator { child, port }
}
