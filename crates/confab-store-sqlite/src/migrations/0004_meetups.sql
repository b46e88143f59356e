-- Meetups, RSVPs, polls and alerts (issue 13). Every table here is a projection of the log,
-- keyed by the internal room id with numbers per room, and emptied before a replay.

CREATE TABLE meetups (
    room_id        INTEGER NOT NULL,
    number         INTEGER NOT NULL,
    name           TEXT NOT NULL,
    location       TEXT NOT NULL,
    takes_place_on INTEGER NOT NULL,
    image_url      TEXT,
    organizer      TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    cancelled      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, number)
) WITHOUT ROWID;
-- A room's meetups by date (the listing and its cursor), and every joined room's for "mine".
CREATE INDEX meetups_date ON meetups (room_id, takes_place_on, number);

-- Answers other than `none` (the default, which has no row).
CREATE TABLE rsvps (
    room_id INTEGER NOT NULL,
    meetup  INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    rsvp    TEXT NOT NULL,
    PRIMARY KEY (room_id, meetup, user_id)
) WITHOUT ROWID;

-- `choices` and `tallies` are JSON arrays; `tallies` is kept up to date by every vote and
-- frozen by the closing. `closed_at` is set by the closing event only (a poll past its
-- deadline and not closed yet is still open here).
CREATE TABLE polls (
    room_id        INTEGER NOT NULL,
    number         INTEGER NOT NULL,
    question       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    choices        TEXT NOT NULL,
    max_selections INTEGER NOT NULL,
    results        TEXT NOT NULL,
    closes_at      INTEGER,
    meetup         INTEGER,
    creator        TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    closed_at      INTEGER,
    close_reason   TEXT,
    closed_by      TEXT,
    outcome        TEXT,
    winner         INTEGER,
    voters_count   INTEGER NOT NULL,
    voted_count    INTEGER NOT NULL DEFAULT 0,
    tallies        TEXT NOT NULL,
    PRIMARY KEY (room_id, number)
) WITHOUT ROWID;
-- The listing: open polls first, each group newest first.
CREATE INDEX polls_listing ON polls (room_id, closed_at IS NOT NULL, number DESC);
-- A meetup's open polls (closed when it is cancelled) are found through the primary key: a
-- room has few polls, and SQLite's planner prefers that walk to a partial index on the meetup.
-- What the server must close: open polls by deadline.
CREATE INDEX polls_due ON polls (closes_at) WHERE closed_at IS NULL AND closes_at IS NOT NULL;

-- The eligible voters of each poll, fixed at its creation; `choices` is the standing vote as a
-- JSON array, '' when the voter has not voted (or withdrew).
CREATE TABLE poll_voters (
    room_id INTEGER NOT NULL,
    poll    INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    choices TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (room_id, poll, user_id)
) WITHOUT ROWID;

-- A read model of what waits for each user: one row per open poll they may vote on and have
-- not. Rows of polls past their deadline and of rooms the user left stay here and are
-- filtered by the reads (both can change without an event about this user).
CREATE TABLE alerts (
    app_id     INTEGER NOT NULL,
    user_id    TEXT NOT NULL,
    room_no    INTEGER NOT NULL,
    poll       INTEGER NOT NULL,
    room_id    INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    meetup     INTEGER,
    question   TEXT NOT NULL,
    closes_at  INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id, room_no, poll)
) WITHOUT ROWID;
-- A closing deletes every alert of its poll.
CREATE INDEX alerts_poll ON alerts (room_id, poll);
