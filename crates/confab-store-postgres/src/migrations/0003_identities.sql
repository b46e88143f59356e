-- Sign-in with OpenID Connect providers (issue 14). Operational state, not projections:
-- written outside the log, never emptied by a replay (see schema::PROJECTIONS).

-- An app's settings for one identity provider; `config` is the JSON the API validated.
CREATE TABLE identity_providers (
    app_id     BIGINT NOT NULL,
    id         TEXT NOT NULL,
    config     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, id)
);

-- A person at a provider (the token's `sub`) and the user they sign in as: one per person.
CREATE TABLE identity_links (
    app_id     BIGINT NOT NULL,
    provider   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, provider, subject)
);
