//! A byte budget for pages of the event log and the change feed. Their rows are counted in
//! rows, but one row can be large (an 8,000-character text of control characters is ~48 KB
//! once JSON escapes them), so a page of 1,000 rows could reach tens of MB, all buffered.

use serde::Serialize;
use std::io;

/// Rows stop being added once the page's JSON passes this size. A single row larger than
/// this still makes a page of its own, so paging always moves forward.
pub const PAGE_BYTES: usize = 1 << 20;

/// Keeps the longest run of leading rows whose JSON fits in [`PAGE_BYTES`] (at least one).
/// Returns whether rows were dropped: the page then has more, and its cursor is that of the
/// last row kept, so the next page starts exactly at the first row dropped.
pub fn fit<T: Serialize>(rows: &mut Vec<T>) -> bool {
    let mut total = 0usize;
    for (i, row) in rows.iter().enumerate() {
        let mut counter = Counter(0);
        // Writing to a counter cannot fail, and our DTOs always serialize; a failure would
        // fail the whole response later anyway, so it counts as nothing here.
        let _ = serde_json::to_writer(&mut counter, row);
        // The comma between rows.
        total = total.saturating_add(counter.0 + 1);
        if total > PAGE_BYTES && i > 0 {
            rows.truncate(i);
            return true;
        }
    }
    false
}

/// Counts bytes written, stores none.
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_least_one_row_and_cuts_at_the_budget() {
        let big = "x".repeat(PAGE_BYTES);
        let mut rows = vec![big.clone(), big.clone()];
        assert!(fit(&mut rows));
        assert_eq!(rows.len(), 1);
        let mut small = vec!["a"; 10];
        assert!(!fit(&mut small));
        assert_eq!(small.len(), 10);
        let third = "y".repeat(PAGE_BYTES / 3);
        let mut rows = vec![third.clone(), third.clone(), third.clone(), third];
        assert!(fit(&mut rows));
        assert_eq!(rows.len(), 2);
    }
}
