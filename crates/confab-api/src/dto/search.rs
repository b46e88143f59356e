//! Search results on the wire.

use serde::Serialize;
use utoipa::ToSchema;

/// Where a search term matched: characters `start..end` (Unicode scalar values) of `text`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpanDto {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHitDto {
    pub room: i64,
    pub seq: i64,
    pub text: String,
    pub sender: Option<String>,
    pub created_at: String,
    pub edited_at: Option<String>,
    /// The matched ranges, in order, overlapping matches merged.
    pub spans: Vec<SpanDto>,
}

impl SearchHitDto {
    pub fn new(h: &confab_core::search::Hit) -> Self {
        SearchHitDto {
            room: h.room.0,
            seq: h.item.seq.0,
            text: h.item.text.clone().unwrap_or_default(),
            sender: h.item.sender.as_ref().map(|s| s.0.clone()),
            created_at: h.item.created_at.to_rfc3339(),
            edited_at: h.item.edited_at.map(|t| t.to_rfc3339()),
            spans: h
                .spans
                .iter()
                .map(|s| SpanDto {
                    start: s.start,
                    end: s.end,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchPageDto {
    /// Newest first.
    pub hits: Vec<SearchHitDto>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
