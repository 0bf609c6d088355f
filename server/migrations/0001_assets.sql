-- One row per asset, kept as a tombstone (deleted_at set) after a delete so the changes
-- feed can report it. seq orders changes per user.
CREATE TABLE assets (
    user_id    TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    mime_type  TEXT    NOT NULL,
    size       BIGINT  NOT NULL,
    sha256     TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    tags       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    version    BIGINT  NOT NULL,
    seq        BIGINT  NOT NULL,
    deleted_at BIGINT,
    thumb_path TEXT,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX assets_user_seq ON assets (user_id, seq);
CREATE TABLE user_seq (
    user_id TEXT   PRIMARY KEY,
    seq     BIGINT NOT NULL
);
