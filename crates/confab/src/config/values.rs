//! Checks and parsers of single configuration values.

pub(super) fn is_postgres_url(value: &str) -> bool {
    value.starts_with("postgres://") || value.starts_with("postgresql://")
}

/// Empty, or comma-separated `nats://HOST:PORT` (or `HOST:PORT`). This build speaks plain
/// NATS only: `tls://` is refused here rather than failing at the first connection.
pub(super) fn nats_servers(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    for server in value.split(',').map(str::trim) {
        let hostport = match server.split_once("://") {
            Some(("nats", rest)) => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "{scheme}:// is not supported; use nats://HOST:PORT"
                ));
            }
            None => server,
        };
        let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
        let ok = hostport.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !ok {
            return Err(format!("{server:?} is not nats://HOST:PORT"));
        }
    }
    Ok(())
}

/// `IP:PORT`, or `HOST:PORT` with a host name that resolves (`localhost:8080`).
pub(super) fn listen_address(value: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    if value.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let shape_ok = value
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !shape_ok {
        return Err(format!(
            "'{value}' is not an address like 127.0.0.1:8080 or localhost:8080"
        ));
    }
    match value.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(_)) => Ok(()),
        _ => Err(format!("the host of '{value}' does not resolve")),
    }
}

/// A log filter: a level, or comma-separated `level` / `target=level` directives. Anything else
/// is refused: a filter the logger cannot read would silently log nothing, errors included.
pub(super) fn log_filter(value: &str) -> Result<(), String> {
    const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];
    let level_ok = |l: &str| LEVELS.iter().any(|x| x.eq_ignore_ascii_case(l.trim()));
    let ok = !value.trim().is_empty()
        && value.split(',').all(|d| match d.rsplit_once('=') {
            Some((target, level)) => !target.trim().is_empty() && level_ok(level),
            None => level_ok(d),
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{value}' is not a log level (off, error, warn, info, debug, trace) or a list of \
             target=level directives"
        ))
    }
}

/// Highest rate or burst a limit accepts.
pub(super) const MAX_RATE: u32 = 100_000_000;

pub(super) fn num<T>(value: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let n: T = value
        .trim()
        .parse()
        .map_err(|_| format!("'{value}' is not a number"))?;
    if n < min || n > max {
        return Err(format!("{n} is outside {min}..={max}"));
    }
    Ok(n)
}

/// The process's (soft) limit on open descriptors, if it has one it can tell.
#[cfg(unix)]
pub(super) fn descriptor_limit() -> Option<usize> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit
        .current
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX).min(10_000_000))
}

#[cfg(not(unix))]
pub(super) fn descriptor_limit() -> Option<usize> {
    None
}

/// A comma-separated list of origins, each `*` or `scheme://host[:port]` as browsers send it.
pub(super) fn origins(value: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for o in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let o = o.trim_end_matches('/');
        let ok = o == "*"
            || o.split_once("://").is_some_and(|(scheme, rest)| {
                !scheme.is_empty()
                    && scheme
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                    && !rest.is_empty()
                    && !rest.contains(['/', '?', '#', '@', ' '])
            });
        if !ok {
            return Err(format!(
                "'{o}' is not an origin like https://app.example.com (or *)"
            ));
        }
        out.push(o.to_ascii_lowercase());
    }
    Ok(out)
}
