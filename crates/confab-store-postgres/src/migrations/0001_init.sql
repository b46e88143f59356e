-- Confab on PostgreSQL. Every table's key starts with the app (`app_id`, or `id` for the apps
-- table itself), so the schema can later be distributed by app without change.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- The append-only log (only a deleted message's texts are ever rewritten, to redact them).
-- An app's offsets are its commit order: they are taken under the app row's lock, held until
-- COMMIT. Replay goes app by app in offset order.
CREATE TABLE events (
    app_id   BIGINT NOT NULL,
    "offset" BIGINT NOT NULL,
    room_no  BIGINT,
    pos      BIGINT,
    seq      BIGINT,
    type     TEXT NOT NULL,
    v        BIGINT NOT NULL,
    at       BIGINT NOT NULL,
    body     TEXT NOT NULL,
    PRIMARY KEY (app_id, "offset")
);
CREATE UNIQUE INDEX events_room_pos ON events (app_id, room_no, pos) WHERE pos IS NOT NULL;
CREATE INDEX events_item ON events (app_id, room_no, seq) WHERE seq IS NOT NULL;

-- Projections: everything below is rebuilt from `events`.
CREATE TABLE apps (
    id             BIGINT PRIMARY KEY,
    name           TEXT NOT NULL,
    token          TEXT NOT NULL UNIQUE,
    secret_hash    TEXT NOT NULL UNIQUE,
    signing_key    TEXT NOT NULL,
    key_id         TEXT NOT NULL UNIQUE,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    last_offset    BIGINT NOT NULL DEFAULT 0,
    rooms_count    BIGINT NOT NULL DEFAULT 0,
    users_count    BIGINT NOT NULL DEFAULT 0,
    messages_count BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE users (
    app_id        BIGINT NOT NULL,
    user_id       TEXT NOT NULL,
    name          TEXT,
    image_url     TEXT,
    email         TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    last_login_at BIGINT,
    last_seen_at  BIGINT,
    PRIMARY KEY (app_id, user_id)
);

-- A room's counters (last_seq, last_pos) are read and incremented only under this row's lock.
CREATE TABLE rooms (
    app_id         BIGINT NOT NULL,
    number         BIGINT NOT NULL,
    kind           TEXT NOT NULL,
    name           TEXT,
    image_url      TEXT,
    visibility     TEXT NOT NULL,
    alias          TEXT,
    creator        TEXT,
    direct_key     TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    member_count   BIGINT NOT NULL DEFAULT 0,
    messages_count BIGINT NOT NULL DEFAULT 0,
    last_seq       BIGINT NOT NULL DEFAULT 0,
    last_pos       BIGINT NOT NULL DEFAULT 0,
    activity       BIGINT NOT NULL DEFAULT 0,
    deleted        BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (app_id, number)
);
CREATE UNIQUE INDEX rooms_alias ON rooms (app_id, alias) WHERE alias IS NOT NULL;
CREATE UNIQUE INDEX rooms_direct ON rooms (app_id, direct_key) WHERE direct_key IS NOT NULL;
CREATE INDEX rooms_public ON rooms (app_id, number) WHERE visibility = 'public' AND NOT deleted;

CREATE TABLE members (
    app_id     BIGINT NOT NULL,
    room_no    BIGINT NOT NULL,
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL,
    state      TEXT NOT NULL,
    read_seq   BIGINT NOT NULL DEFAULT 0,
    since      BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, room_no, user_id)
);
CREATE INDEX members_user ON members (app_id, user_id, state);

-- Timeline items. `folded` is the message text case-folded by Confab itself
-- (`confab_core::search::fold`), so search matches exactly as the core matcher does whatever
-- the database's locale; NULL for announcements and deleted messages.
CREATE TABLE items (
    app_id       BIGINT NOT NULL,
    room_no      BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    pos          BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    sender       TEXT,
    text         TEXT,
    folded       TEXT,
    reply_to     BIGINT,
    reply_count  BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    edited_at    BIGINT,
    deleted      BOOLEAN NOT NULL DEFAULT FALSE,
    announcement TEXT,
    client_id    TEXT,
    PRIMARY KEY (app_id, room_no, seq)
);
CREATE INDEX items_replies ON items (app_id, room_no, reply_to, seq) WHERE reply_to IS NOT NULL;
CREATE INDEX items_client ON items (app_id, room_no, client_id) WHERE client_id IS NOT NULL;
-- Search: trigrams propose candidates for terms of 3+ characters; shorter terms walk the
-- newest-first order below. New entries go to GIN's pending list (fastupdate), which index
-- scans read too, so a send is searchable the moment it commits; merging them into the index
-- in bulk later costs far less than ~70 trigram updates inside every send's transaction
-- (which made 95 % of the WAL). The list is kept small so that scanning it stays cheap.
CREATE INDEX items_search ON items USING gin (folded gin_trgm_ops)
    WITH (fastupdate = on, gin_pending_list_limit = 1024);
CREATE INDEX items_newest ON items (app_id, room_no, created_at DESC, seq DESC)
    WHERE folded IS NOT NULL;
