//! Child processes of the ws scenario, and what the orchestrator reads about them from /proc.

use anyhow::Context;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A child process speaking lines on stdin/stdout.
pub struct Proc {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Proc {
    pub fn spawn(args: &[String]) -> anyhow::Result<Proc> {
        Self::spawn_with(args, false)
    }

    /// With `batch`, the child runs under `SCHED_BATCH` (through `chrt`, when present): it
    /// does not preempt the server on every wake-up, as clients on other machines would not.
    pub fn spawn_with(args: &[String], batch: bool) -> anyhow::Result<Proc> {
        let exe = std::env::current_exe().context("cannot find the bench binary")?;
        let chrt = std::path::Path::new("/usr/bin/chrt");
        let mut cmd = if batch && chrt.exists() {
            let mut c = Command::new(chrt);
            c.args(["--batch", "0"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot spawn a child process")?;
        let stdout = child.stdout.take().context("child stdout")?;
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Proc {
            child,
            stdin,
            lines,
        })
    }

    pub async fn line(&mut self, within: Duration) -> anyhow::Result<String> {
        tokio::time::timeout(within, self.lines.recv())
            .await
            .context("a child process did not answer in time")?
            .context("a child process ended")
    }

    pub fn say(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("child stdin closed")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }

    /// Closes stdin (the child's signal to end) and waits for it.
    pub fn finish(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Resident memory of a process, in bytes.
pub fn rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")?;
    Ok(kb * 1024)
}

/// CPU time a process has used so far: (user, system).
pub fn cpu_split(pid: u32) -> (Duration, Duration) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'; in ticks
    // of 10 ms.
    let tick = |i: usize| Duration::from_millis(f.get(i).copied().unwrap_or(0) * 10);
    (tick(11), tick(12))
}

/// CPU time (user + system) a process has used so far.
pub fn cpu(pid: u32) -> Duration {
    let (u, s) = cpu_split(pid);
    u + s
}

/// Waits until the server is idle (under 5 % of a core over half a second), at most 60 s:
/// work left over from one phase (users going offline after the presence grace, their
/// `last_seen_at` writes) must not be measured as part of the next.
pub async fn quiesce(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let before = cpu(pid);
        tokio::time::sleep(Duration::from_millis(500)).await;
        if cpu(pid).saturating_sub(before) <= Duration::from_millis(25) {
            return;
        }
    }
}

/// `confab-bench ws-server`: runs the server until stdin closes. Prints `addr ADMIN_KEY`.
pub fn server_main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        let mut config = confab::config::Config::default();
        config.set("listen", "127.0.0.1:0", "bench")?;
        config.data_dir = dir.path().to_path_buf();
        config.set("log", "warn", "bench")?;
        // The latency run sends one message after the other from one user, far above the
        // default per-user rate.
        crate::harness::lift_rate_limits(&mut config)?;
        let running = confab::start(&config).await?;
        println!("{} {}", running.addr, running.admin_key);
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).map_or(0, |n| n) > 0 {}
        })
        .await?;
        running.stop().await
    })
}
