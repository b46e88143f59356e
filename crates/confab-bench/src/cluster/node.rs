//! The processes of a cluster: `confab serve` nodes (the shipped binary, each a process of its
//! own so each has the whole file limit to itself) and, when asked for, a nats-server of the
//! bench's own. Both are killed when their handle drops, so a failed run leaves nothing behind.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a node or a nats-server may take to start.
const START_WITHIN: Duration = Duration::from_secs(60);

/// A `confab serve` child process.
pub struct Node {
    child: Child,
    /// `IP:PORT` it listens on.
    pub addr: String,
    log: PathBuf,
}

impl Node {
    /// Starts `exe serve` with its data in `dir` and its log in `dir/serve.log`, the settings
    /// in `env` (`CONFAB_*` of this process are not passed on), and waits for its address.
    ///
    /// The soft file limit is raised to the hard one first (through `sh`, which `exec`s, so
    /// the process id stays the node's): a node holds one file per connection.
    pub async fn spawn(exe: &Path, dir: &Path, env: &[(String, String)]) -> anyhow::Result<Node> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let log = dir.join("serve.log");
        let file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@""#)
            .arg(exe)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir);
        for (k, _) in std::env::vars() {
            if k.starts_with("CONFAB_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        // Owned at once, so that a failed wait below still kills and reaps it.
        let mut node = Node {
            child,
            addr: String::new(),
            log,
        };
        let deadline = Instant::now() + START_WITHIN;
        loop {
            let text = std::fs::read_to_string(&node.log).unwrap_or_default();
            if let Some(rest) = text.split("addr=").nth(1) {
                node.addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                return Ok(node);
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                bail!("a node exited ({status}) before listening: {text}");
            }
            if Instant::now() > deadline {
                bail!("a node did not start within {START_WITHIN:?}: {text}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The NATS a cluster uses: the machine's (at a URL) or one started for this run.
pub struct Nats {
    pub url: String,
    own: Option<Child>,
}

impl Nats {
    /// `own` starts `/usr/sbin/nats-server` on a free loopback port; anything else is a URL
    /// used as it is.
    pub async fn open(spec: &str) -> anyhow::Result<Nats> {
        if spec != "own" {
            return Ok(Nats {
                url: spec.to_owned(),
                own: None,
            });
        }
        let port = free_port()?;
        let child = Command::new("/usr/sbin/nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start /usr/sbin/nats-server")?;
        let nats = Nats {
            url: format!("nats://127.0.0.1:{port}"),
            own: Some(child),
        };
        let deadline = Instant::now() + START_WITHIN;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                bail!("nats-server did not listen on port {port} within {START_WITHIN:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(nats)
    }

    pub fn describe(&self) -> String {
        match self.own {
            Some(_) => format!("a nats-server of the bench's own at {}", self.url),
            None => format!("the NATS at {}", self.url),
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(child) = self.own.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free port")?;
    Ok(listener.local_addr()?.port())
}

/// The soft and hard limits on open files of this process (children inherit them).
pub fn file_limits() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = text.lines().find(|l| l.starts_with("Max open files"));
    let nums: Vec<u64> = line
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    match nums.as_slice() {
        [soft, hard, ..] => (*soft, *hard),
        // "unlimited" does not parse; say so with a large number.
        [soft] => (*soft, u64::MAX),
        _ => (1024, 1024),
    }
}
