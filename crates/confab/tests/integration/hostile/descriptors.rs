//! A server that runs out of descriptors: the real binary under a small descriptor limit,
//! flooded with clients that trickle their bodies.

use super::{HEALTH, PATIENCE, exchange, post_app_head, response, trickle};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// A child process that is killed when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU time (user + system, in clock ticks) the process `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_server_waits_then_serves_again() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("temp dir");
    let key = "hostile-admin-key-0123456789";
    // A small descriptor limit, and a cap above it, so the tricklers use up the descriptors.
    let mut child = Killed(
        std::process::Command::new("sh")
            .args([
                "-c",
                "ulimit -n 128 && exec \"$0\" serve --listen 127.0.0.1:0 --data-dir \"$1\"",
            ])
            .arg(env!("CARGO_BIN_EXE_confab"))
            .arg(dir.path())
            .env("CONFAB_ADMIN_KEY", key)
            .env("CONFAB_MAX_CONNECTIONS", "100000")
            .env("CONFAB_HTTP_BODY_TIMEOUT_MS", "500")
            .env("CONFAB_HTTP_HEADER_TIMEOUT_MS", "500")
            .env("CONFAB_LOG", "info")
            .env_remove("RUST_LOG")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("serve starts"),
    );
    let pid = child.0.id();
    // The log goes to a channel, line by line, so the pipe never fills.
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stderr = child.0.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    let addr = loop {
        let line = timeout(PATIENCE, lines.recv())
            .await
            .expect("the server starts in time")
            .expect("the server logs its address");
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().expect("addr").to_owned();
        }
    };
    let (cpu_before, wall) = (cpu_ticks(pid), std::time::Instant::now());
    let mut tricklers = Vec::new();
    for _ in 0..300 {
        let mut c = TcpStream::connect(&addr).await.expect("connect");
        c.write_all(post_app_head(key, 1000).as_bytes())
            .await
            .expect("headers");
        tricklers.push(trickle(c.into_split().1));
    }
    // A legitimate client, queued behind all of them, is served once their deadlines pass.
    let mut legit = TcpStream::connect(&addr).await.expect("connect");
    legit.write_all(HEALTH.as_bytes()).await.expect("write");
    let answer = timeout(Duration::from_secs(30), response(&mut legit))
        .await
        .expect("served once descriptors free")
        .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (cpu, wall) = (cpu_ticks(pid) - cpu_before, wall.elapsed());
    for t in &tricklers {
        t.abort();
    }
    // Still alive and serving.
    let mut again = TcpStream::connect(&addr).await.expect("connect");
    assert!(
        exchange(&mut again, HEALTH)
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(
        child.0.try_wait().expect("status").is_none(),
        "the server died"
    );
    drop(child);
    let mut log = Vec::new();
    while let Ok(line) = lines.try_recv() {
        log.push(line);
    }
    let starved = log
        .iter()
        .filter(|l| l.contains("cannot accept connections"))
        .count();
    assert!(starved >= 1, "the descriptors never ran out: {log:#?}");
    assert!(starved <= 2, "the log is flooded: {starved} lines");
    // No busy loop while starved: well under one core (ticks are 1/100 s).
    let ticks = wall.as_millis() as u64 / 10;
    assert!(cpu < ticks / 2, "{cpu} ticks of CPU in {wall:?}");
}
