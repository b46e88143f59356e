-- Search indexing off the send's transaction (issue 11): trigram upkeep inside every send made
-- about a third of the writer backend's CPU. Sends now write only `items` (whose `folded` stays
-- for checking candidates and for short terms); each node's indexer (`indexer.rs`) follows the
-- log after the sends commit and keeps `search_items` equal to the items' `folded` up to its
-- app's mark. Searches ask the index and read the items of messages posted or edited after the
-- mark directly, so results never lag a committed send. Both tables are projections: a replay
-- empties them (marks then count as 0) and the indexer catches up.
DROP INDEX items_search;

-- The folded text of every message that has one (not announcements, not deleted messages), as
-- of the item's events up to its app's mark.
CREATE TABLE search_items (
    app_id  BIGINT NOT NULL,
    room_no BIGINT NOT NULL,
    seq     BIGINT NOT NULL,
    folded  TEXT NOT NULL,
    PRIMARY KEY (app_id, room_no, seq)
);
-- GIN's pending list (fastupdate) is kept: entries go to it cheaply and are merged in bulk,
-- which costs the database less CPU than ~70 trigram updates per row, and the merge now falls
-- on an indexer's insert, off every send. It is kept small, as before, so that searches, which
-- scan it, stay cheap.
CREATE INDEX search_items_trgm ON search_items USING gin (folded gin_trgm_ops)
    WITH (fastupdate = on, gin_pending_list_limit = 1024);

-- The last event of each app whose changes `search_items` holds (no row: 0). Every event at or
-- below it is applied; the ones after it are what searches read directly. Locked by the
-- indexer that advances it, so two nodes never apply the same events.
CREATE TABLE search_marks (
    app_id      BIGINT PRIMARY KEY,
    last_offset BIGINT NOT NULL
);

-- Marks first: the items are then read in a later snapshot, so they hold at least every
-- change up to the marks (a node of the previous version may still be writing).
INSERT INTO search_marks (app_id, last_offset) SELECT id, last_offset FROM apps;
INSERT INTO search_items (app_id, room_no, seq, folded)
    SELECT app_id, room_no, seq, folded FROM items WHERE folded IS NOT NULL;
