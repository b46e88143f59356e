-- A send no longer writes to an index of the log ordered by room and seq. With sends spread over
-- many rooms every such index costs a page written per message (each room's entries sit on a page
-- of their own), and this one only served the redaction of a deleted message's texts. A deletion
-- now finds the posting event by its room position, kept on the item (`posted_pos`), and the edits
-- through an index that holds edit events only.
ALTER TABLE items ADD COLUMN posted_pos INTEGER;

-- Existing messages take the position of their posting event, found through the old index.
UPDATE items SET posted_pos = (
    SELECT e.pos FROM rooms r, events e
     WHERE r.id = items.room_id
       AND e.app_id = r.app_id AND e.room_no = r.number AND e.seq = items.seq
       AND e.type = 'message_posted')
 WHERE kind = 'message';

DROP INDEX events_item;
CREATE INDEX events_edits ON events (app_id, room_no, seq) WHERE type = 'message_edited';

-- The readiness probe pads its row so that it needs real free space (see `Writer::ping`): with
-- small pages one page of probe could fit in what a commit that failed on a full disk left.
ALTER TABLE health ADD COLUMN pad BLOB;
