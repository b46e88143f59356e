-- Meetups, RSVPs, polls and alerts (issue 13). All projections, rebuilt from `events`. These
-- rows belong to their room: they are written, and read by the rules, only under the room
-- row's lock, so they need no locks of their own.

CREATE TABLE meetups (
    app_id         BIGINT NOT NULL,
    room_no        BIGINT NOT NULL,
    number         BIGINT NOT NULL,
    name           TEXT NOT NULL,
    location       TEXT NOT NULL,
    takes_place_on BIGINT NOT NULL,
    image_url      TEXT,
    organizer      TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    cancelled      BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (app_id, room_no, number)
);
-- A room's meetups by time (listing, upcoming first), and my upcoming meetups room by room.
CREATE INDEX meetups_when ON meetups (app_id, room_no, takes_place_on, number);

-- Answers other than `none` (no row: `none`). A member who leaves keeps their row, which
-- counts again if they come back; counts only take joined members.
CREATE TABLE rsvps (
    app_id    BIGINT NOT NULL,
    room_no   BIGINT NOT NULL,
    meetup_no BIGINT NOT NULL,
    user_id   TEXT NOT NULL,
    rsvp      TEXT NOT NULL,
    PRIMARY KEY (app_id, room_no, meetup_no, user_id)
);

-- A poll with its counts and tallies kept current by the votes, and how it closed.
CREATE TABLE polls (
    app_id         BIGINT NOT NULL,
    room_no        BIGINT NOT NULL,
    number         BIGINT NOT NULL,
    question       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    choices        TEXT[] NOT NULL,
    max_selections BIGINT NOT NULL,
    results        TEXT NOT NULL,
    closes_at      BIGINT,
    meetup_no      BIGINT,
    creator        TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    voters_count   BIGINT NOT NULL,
    voted_count    BIGINT NOT NULL DEFAULT 0,
    tallies        BIGINT[] NOT NULL,
    closed         BOOLEAN NOT NULL DEFAULT FALSE,
    closed_at      BIGINT,
    close_reason   TEXT,
    closed_by      TEXT,
    outcome        TEXT,
    winner         BIGINT,
    PRIMARY KEY (app_id, room_no, number)
);
-- The listing: open polls first, each group newest first.
CREATE INDEX polls_listing ON polls (app_id, room_no, closed, number DESC);
-- A meetup's open polls (closed with it when it is cancelled).
CREATE INDEX polls_meetup ON polls (app_id, room_no, meetup_no) WHERE meetup_no IS NOT NULL;
-- What the server must close: deadlines of polls still open, across apps.
CREATE INDEX polls_due ON polls (closes_at) WHERE closes_at IS NOT NULL AND NOT closed;

-- Eligible voters, fixed at the poll's creation, each with their standing vote (sorted
-- choice indexes; empty: not voted).
CREATE TABLE poll_voters (
    app_id  BIGINT NOT NULL,
    room_no BIGINT NOT NULL,
    poll_no BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    choices BIGINT[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (app_id, room_no, poll_no, user_id)
);

-- One row per eligible voter who has not voted on a poll that is not closed (by an event):
-- made on PollCreated, removed by VoteCast, made again by VoteWithdrawn, all of a poll's
-- removed by PollClosed. Readers also leave out polls past their deadline and rooms the
-- user is no longer joined to.
CREATE TABLE alerts (
    app_id  BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    room_no BIGINT NOT NULL,
    poll_no BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id, room_no, poll_no)
);
CREATE INDEX alerts_poll ON alerts (app_id, room_no, poll_no);
