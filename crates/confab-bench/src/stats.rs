//! Percentiles by sorting, and the plain result tables.

use std::time::Duration;

/// A set of latency samples, sorted once.
pub struct Samples {
    sorted: Vec<Duration>,
}

impl Samples {
    pub fn new(mut v: Vec<Duration>) -> Self {
        v.sort_unstable();
        Samples { sorted: v }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The samples of several runs together.
    pub fn merged(parts: Vec<Samples>) -> Self {
        Samples::new(parts.into_iter().flat_map(|s| s.sorted).collect())
    }

    /// Nearest-rank percentile (`p` in 0..=100); zero when there are no samples.
    pub fn pct(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let n = self.sorted.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.sorted[rank.clamp(1, n) - 1]
    }

    pub fn max(&self) -> Duration {
        self.sorted.last().copied().unwrap_or_default()
    }

    pub fn mean(&self) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let total: Duration = self.sorted.iter().sum();
        total / self.sorted.len() as u32
    }
}

/// Milliseconds with a precision that suits the size.
pub fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 1.0 {
        format!("{v:.3} ms")
    } else if v < 100.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// A count per second, with thousands separators.
pub fn rate(v: f64, unit: &str) -> String {
    format!("{} {unit}", thousands(v.round() as u64))
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let groups: Vec<String> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|g| String::from_utf8_lossy(g).into_owned())
        .collect();
    groups.join(",")
}

/// One scenario's results: rows of figure, measured value, target and verdict.
pub struct Table {
    pub title: String,
    rows: Vec<[String; 4]>,
    notes: Vec<String>,
    misses: usize,
}

impl Table {
    pub fn new(title: impl Into<String>) -> Self {
        Table {
            title: title.into(),
            rows: Vec::new(),
            notes: Vec::new(),
            misses: 0,
        }
    }

    /// A figure with no target.
    pub fn info(&mut self, name: &str, value: impl Into<String>) {
        self.rows
            .push([name.to_owned(), value.into(), String::new(), String::new()]);
    }

    /// A figure checked against a target.
    pub fn check(&mut self, name: &str, value: impl Into<String>, target: &str, pass: bool) {
        if !pass {
            self.misses += 1;
        }
        let verdict = if pass { "PASS" } else { "MISS" };
        self.rows.push([
            name.to_owned(),
            value.into(),
            target.to_owned(),
            verdict.to_owned(),
        ]);
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    pub fn misses(&self) -> usize {
        self.misses
    }

    pub fn render(&self) -> String {
        let header = [
            "figure".to_owned(),
            "measured".to_owned(),
            "target".to_owned(),
            "verdict".to_owned(),
        ];
        let mut width = [0usize; 4];
        for row in std::iter::once(&header).chain(self.rows.iter()) {
            for (w, cell) in width.iter_mut().zip(row.iter()) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |row: &[String; 4]| -> String {
            let mut s = String::from("|");
            for (w, cell) in width.iter().zip(row.iter()) {
                s.push(' ');
                s.push_str(cell);
                s.push_str(&" ".repeat(w - cell.chars().count()));
                s.push_str(" |");
            }
            s.push('\n');
            s
        };
        let mut out = format!("\n## {}\n\n", self.title);
        out.push_str(&line(&header));
        let mut sep = String::from("|");
        for w in width {
            sep.push_str(&"-".repeat(w + 2));
            sep.push('|');
        }
        sep.push('\n');
        out.push_str(&sep);
        for row in &self.rows {
            out.push_str(&line(row));
        }
        for n in &self.notes {
            out.push_str(&format!("  - {n}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Samples::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(s.pct(50.0), Duration::from_millis(50));
        assert_eq!(s.pct(99.0), Duration::from_millis(99));
        assert_eq!(s.pct(100.0), Duration::from_millis(100));
        assert_eq!(s.pct(0.0), Duration::from_millis(1));
        assert_eq!(Samples::new(vec![]).pct(50.0), Duration::ZERO);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
