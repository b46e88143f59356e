//! Partial-match message search: what a query means, independent of the index that serves it.
//!
//! A query is one or more terms separated by white space; a message matches when every term
//! occurs somewhere in its text, inside words too, ignoring case (Unicode-aware). Stores use an
//! index to find candidates quickly and then confirm each one with [`Query::spans`], so every
//! backend answers the same.

use crate::error::{DomainError, ErrorCode};
use crate::ids::{RoomNumber, Seq, Timestamp, UserId};
use crate::model::Item;

/// Most terms in one query.
pub const MAX_TERMS: usize = 8;
/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Shortest term an index can serve (trigram indexes need three characters).
pub const INDEXED_TERM_CHARS: usize = 3;

/// A parsed query: its terms, case-folded, longest first, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    terms: Vec<String>,
}

/// Where to search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One room (the caller has checked that the viewer may read it).
    Room(RoomNumber),
    /// Every room the user has joined.
    Joined(UserId),
}

/// Results come newest first; a page continues strictly before this point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub created_at: Timestamp,
    pub room: RoomNumber,
    pub seq: Seq,
}

/// One message that matched, with the character ranges of the matches in its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub room: RoomNumber,
    pub item: Item,
    pub spans: Vec<Span>,
}

impl Hit {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.item.created_at,
            room: self.room,
            seq: self.item.seq,
        }
    }
}

/// A match: `start..end` in Unicode scalar values (characters) of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// Lower-cases text the same way for queries and messages.
pub fn fold(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

impl Query {
    /// Parses a query string. Refuses an empty query, and one too long or with too many terms.
    pub fn parse(raw: &str) -> Result<Query, DomainError> {
        // No text holds U+0000 (`validate::text` refuses it, and PostgreSQL cannot store it).
        if raw.contains('\0') {
            return Err(DomainError::new(
                ErrorCode::InvalidQuery,
                "the query must not contain U+0000",
            ));
        }
        if raw.chars().count() > MAX_QUERY_CHARS {
            return Err(DomainError::new(
                ErrorCode::QueryTooLong,
                format!("a query has at most {MAX_QUERY_CHARS} characters"),
            ));
        }
        let mut terms: Vec<String> = Vec::new();
        for word in raw.split_whitespace() {
            let term = fold(word);
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
        if terms.is_empty() {
            return Err(DomainError::new(
                ErrorCode::InvalidQuery,
                "the query must contain at least one non-blank character",
            ));
        }
        if terms.len() > MAX_TERMS {
            return Err(DomainError::new(
                ErrorCode::QueryTooLong,
                format!("a query has at most {MAX_TERMS} terms"),
            ));
        }
        terms.sort_by_key(|t| std::cmp::Reverse(t.chars().count()));
        Ok(Query { terms })
    }

    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// Terms long enough for a trigram index.
    pub fn indexed_terms(&self) -> impl Iterator<Item = &str> {
        self.terms
            .iter()
            .filter(|t| t.chars().count() >= INDEXED_TERM_CHARS)
            .map(String::as_str)
    }

    /// An FTS5 expression for a trigram index that keeps no positions: every trigram of every
    /// indexed term must be present. `None` when all terms are too short for the index. It
    /// proposes a superset of the matches; [`Query::spans`] decides.
    pub fn fts5_expression(&self) -> Option<String> {
        let mut grams: Vec<String> = Vec::new();
        for term in self.indexed_terms() {
            let chars: Vec<char> = term.chars().collect();
            for w in chars.windows(INDEXED_TERM_CHARS) {
                let g: String = w.iter().collect();
                if !grams.contains(&g) {
                    grams.push(g);
                }
            }
        }
        let parts: Vec<String> = grams
            .iter()
            .map(|g| format!("\"{}\"", g.replace('"', "\"\"")))
            .collect();
        (!parts.is_empty()).then(|| parts.join(" AND "))
    }

    /// Where the terms occur in `text`, merged and in order; `None` unless every term occurs.
    pub fn spans(&self, text: &str) -> Option<Vec<Span>> {
        // Fold character by character, remembering which original character each folded one
        // came from, so matches found in the folded text map back to the original.
        let mut folded = String::with_capacity(text.len());
        let mut origin: Vec<usize> = Vec::with_capacity(text.len());
        for (i, c) in text.chars().enumerate() {
            for l in c.to_lowercase() {
                folded.push(l);
                origin.push(i);
            }
        }
        let byte_to_char: Vec<usize> = {
            let mut v = vec![0; folded.len() + 1];
            let mut n = 0;
            for (b, _) in folded.char_indices() {
                v[b] = n;
                n += 1;
            }
            v[folded.len()] = n;
            v
        };
        let mut spans = Vec::new();
        for term in &self.terms {
            let mut found = false;
            for (b, _) in folded.match_indices(term.as_str()) {
                found = true;
                let first = byte_to_char[b];
                let last = byte_to_char[b + term.len()] - 1;
                spans.push(Span {
                    start: origin[first],
                    end: origin[last] + 1,
                });
            }
            if !found {
                return None;
            }
        }
        spans.sort();
        let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
        for s in spans {
            match merged.last_mut() {
                Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
                _ => merged.push(s),
            }
        }
        Some(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(s).expect("a valid query")
    }

    fn span(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    #[test]
    fn matches_inside_words_ignoring_case() {
        assert_eq!(q("ello").spans("Hello world"), Some(vec![span(1, 5)]));
        assert_eq!(q("WASS").spans("wassup!!!!"), Some(vec![span(0, 4)]));
        assert_eq!(q("ünch").spans("München"), Some(vec![span(1, 5)]));
        assert_eq!(q("MÜNCH").spans("in münchen"), Some(vec![span(3, 8)]));
        assert_eq!(q("xyz").spans("Hello"), None);
    }

    #[test]
    fn every_term_must_occur() {
        assert_eq!(
            q("lo wor").spans("Hello world"),
            Some(vec![span(3, 5), span(6, 9)])
        );
        assert_eq!(q("hello moon").spans("Hello world"), None);
    }

    #[test]
    fn short_terms_and_repeats() {
        assert_eq!(q("l").spans("Hello"), Some(vec![span(2, 4)]));
        assert_eq!(
            q("a").spans("banana"),
            Some(vec![span(1, 2), span(3, 4), span(5, 6)])
        );
    }

    #[test]
    fn spans_count_characters_not_bytes() {
        assert_eq!(q("ö").spans("😀 schön"), Some(vec![span(5, 6)]));
    }

    #[test]
    fn expansion_under_folding_maps_back() {
        // 'İ' folds to two characters; a match on the second still points at 'İ'.
        assert_eq!(q("i\u{307}x").spans("aİx"), Some(vec![span(1, 3)]));
    }

    #[test]
    fn parse_refuses_blank_and_oversize() {
        assert!(Query::parse("   ").is_err());
        assert!(Query::parse(&"a".repeat(MAX_QUERY_CHARS + 1)).is_err());
        assert!(Query::parse("a b c d e f g h i").is_err());
        assert_eq!(q("Foo foo FOO").terms(), ["foo"]);
    }

    #[test]
    fn fts5_expression_quotes_and_skips_short_terms() {
        assert_eq!(q("ab").fts5_expression(), None);
        assert_eq!(
            q("say \"hi\" ab").fts5_expression().as_deref(),
            Some("\"\"\"hi\" AND \"hi\"\"\" AND \"say\"")
        );
        assert_eq!(
            q("hello").fts5_expression().as_deref(),
            Some("\"hel\" AND \"ell\" AND \"llo\"")
        );
    }
}
