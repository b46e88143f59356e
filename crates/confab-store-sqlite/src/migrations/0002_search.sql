-- Partial-match message search: an FTS5 trigram index over the text of live messages.
-- It is an external-content index on `items` kept in step by triggers, so it is part of every
-- write transaction (a message is searchable once its send is acknowledged) and of every replay.
-- Announcements and deleted messages are not indexed. `case_sensitive 0` folds Unicode case.
-- The index keeps only which rows hold each trigram (`detail = none`, no sizes): a query asks for
-- rows holding every trigram of its terms, and the store confirms each candidate against the
-- text. That keeps the index small and cheap to write.
CREATE VIRTUAL TABLE items_fts USING fts5(
    text,
    content = 'items',
    content_rowid = 'id',
    tokenize = 'trigram case_sensitive 0',
    detail = none,
    columnsize = 0
);

CREATE TRIGGER items_fts_insert AFTER INSERT ON items
WHEN new.kind = 'message' AND new.text IS NOT NULL
BEGIN
    INSERT INTO items_fts (rowid, text) VALUES (new.id, new.text);
END;

-- One trigger for edits, so the old text leaves the index before the new text enters it (two
-- triggers would fire in an unspecified order, and trigrams shared by both texts could be lost).
CREATE TRIGGER items_fts_update AFTER UPDATE OF text ON items
BEGIN
    INSERT INTO items_fts (items_fts, rowid, text)
        SELECT 'delete', old.id, old.text WHERE old.kind = 'message' AND old.text IS NOT NULL;
    INSERT INTO items_fts (rowid, text)
        SELECT new.id, new.text WHERE new.kind = 'message' AND new.text IS NOT NULL;
END;

CREATE TRIGGER items_fts_delete AFTER DELETE ON items
WHEN old.kind = 'message' AND old.text IS NOT NULL
BEGIN
    INSERT INTO items_fts (items_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;

-- Index what an earlier version already stored.
INSERT INTO items_fts (rowid, text)
    SELECT id, text FROM items WHERE kind = 'message' AND text IS NOT NULL;
