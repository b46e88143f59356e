-- The append-only log. `id` is the global commit order, used for replay.
CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    app_id  INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    room_no INTEGER,
    pos     INTEGER,
    seq     INTEGER,
    type    TEXT NOT NULL,
    v       INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    body    TEXT NOT NULL
);
CREATE UNIQUE INDEX events_app_offset ON events (app_id, "offset");
CREATE UNIQUE INDEX events_room_pos ON events (app_id, room_no, pos) WHERE pos IS NOT NULL;

-- Projections: everything below is rebuilt from `events` by `confab rebuild`.
CREATE TABLE apps (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL,
    token          TEXT NOT NULL UNIQUE,
    secret_hash    TEXT NOT NULL UNIQUE,
    signing_key    TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    last_offset    INTEGER NOT NULL DEFAULT 0,
    last_room      INTEGER NOT NULL DEFAULT 0,
    rooms_count    INTEGER NOT NULL DEFAULT 0,
    users_count    INTEGER NOT NULL DEFAULT 0,
    messages_count INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE users (
    app_id        INTEGER NOT NULL,
    user_id       TEXT NOT NULL,
    name          TEXT,
    image_url     TEXT,
    email         TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_login_at INTEGER,
    last_seen_at  INTEGER,
    PRIMARY KEY (app_id, user_id)
) WITHOUT ROWID;

CREATE TABLE rooms (
    id             INTEGER PRIMARY KEY,
    app_id         INTEGER NOT NULL,
    number         INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    name           TEXT,
    image_url      TEXT,
    visibility     TEXT NOT NULL,
    alias          TEXT,
    creator        TEXT,
    direct_key     TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    member_count   INTEGER NOT NULL DEFAULT 0,
    messages_count INTEGER NOT NULL DEFAULT 0,
    last_seq       INTEGER NOT NULL DEFAULT 0,
    last_pos       INTEGER NOT NULL DEFAULT 0,
    activity       INTEGER NOT NULL DEFAULT 0,
    deleted        INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX rooms_number ON rooms (app_id, number);
CREATE UNIQUE INDEX rooms_alias ON rooms (app_id, alias) WHERE alias IS NOT NULL;
CREATE UNIQUE INDEX rooms_direct ON rooms (app_id, direct_key) WHERE direct_key IS NOT NULL;
CREATE INDEX rooms_public ON rooms (app_id, number) WHERE visibility = 'public' AND deleted = 0;

CREATE TABLE members (
    room_id    INTEGER NOT NULL,
    user_id    TEXT NOT NULL,
    app_id     INTEGER NOT NULL,
    role       TEXT NOT NULL,
    state      TEXT NOT NULL,
    read_seq   INTEGER NOT NULL DEFAULT 0,
    since      INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_user ON members (app_id, user_id, state);

-- Timeline items. id = room_id << 32 | seq, so a room's timeline is one contiguous key range.
CREATE TABLE items (
    id           INTEGER PRIMARY KEY,
    room_id      INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    pos          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    sender       TEXT,
    text         TEXT,
    reply_to     INTEGER,
    reply_count  INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    edited_at    INTEGER,
    deleted      INTEGER NOT NULL DEFAULT 0,
    announcement TEXT,
    client_id    TEXT
);
CREATE INDEX items_replies ON items (room_id, reply_to, seq) WHERE reply_to IS NOT NULL;
CREATE INDEX items_client ON items (room_id, client_id) WHERE client_id IS NOT NULL;
