//! `confab serve` as a child process of a test: for what an in-process server cannot show
//! (a crash with `kill -9`, a log written to a file, several nodes as separate processes).

use crate::common::Server;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `confab` binary, with none of this process's `CONFAB_*` settings.
pub fn confab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_confab"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CONFAB_") {
            c.env_remove(k);
        }
    }
    c
}

/// A `confab serve` child process; killed when dropped.
pub struct Spawned {
    pub child: Child,
    pub addr: String,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `confab serve` on `data_dir` with `env` set, its log written to `log`; waits for its
/// address.
pub fn spawn_serve(data_dir: &Path, log: &Path, level: &str, env: &[(&str, &str)]) -> Spawned {
    let file = std::fs::File::create(log).expect("log file");
    let child = confab()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("CONFAB_LOG", level)
        // These tests send in bursts; the rate limits have tests of their own.
        .env("CONFAB_SENDS_PER_SECOND", "0")
        .env("CONFAB_READS_PER_SECOND", "0")
        .envs(env.iter().copied())
        .stderr(Stdio::from(file))
        .spawn()
        .expect("serve starts");
    // Owned at once, so that a failed wait below still kills and reaps it.
    let mut spawned = Spawned {
        child,
        addr: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(rest) = text.split("addr=").nth(1) {
            spawned.addr = rest.split_whitespace().next().expect("address").to_owned();
            return spawned;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not start: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client of a spawned server, with the admin key it generated into `data_dir`.
pub fn client_of(spawned: &Spawned, data_dir: &Path) -> Server {
    let key = std::fs::read_to_string(data_dir.join("admin.key")).expect("admin key");
    Server::external(
        format!("http://{}", spawned.addr),
        key.trim().to_owned(),
        data_dir,
    )
}
