-- User tokens name their app's signing key by an opaque key id (the app token used to be there).
-- Filled for existing apps by the migration code, which computes it from the signing key.
ALTER TABLE apps ADD COLUMN key_id TEXT;
CREATE UNIQUE INDEX apps_key_id ON apps (key_id);

-- The events of one timeline item, so that a delete can redact the texts its log still holds.
CREATE INDEX events_item ON events (app_id, room_no, seq) WHERE seq IS NOT NULL;

-- A row the readiness probe writes after a failed commit, to learn whether writes work again.
-- Not a projection and not in the log.
CREATE TABLE health (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    probe INTEGER NOT NULL
);

-- Projections no longer use the app's log offset as a clock, so that a store with many writers
-- can take the offset last: a room's activity is the time of its last item, a member's
-- seniority the room position at which they joined. Existing rows are converted exactly, from
-- the event each old value names.
UPDATE rooms SET activity = COALESCE(
    (SELECT e.at FROM events e WHERE e.app_id = rooms.app_id AND e."offset" = rooms.activity),
    activity);
UPDATE members SET since = COALESCE(
    (SELECT e.pos FROM events e WHERE e.app_id = members.app_id AND e."offset" = members.since),
    since);
