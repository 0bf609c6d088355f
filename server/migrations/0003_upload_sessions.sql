-- Resumable upload sessions (docs/protocol.md, "Resumable uploads"): one row per open session,
-- keyed like the asset it becomes. Everything an instance needs to continue a session another
-- instance started lives here: the offset, the SHA-256 checkpoint at that offset, the storage
-- handle (S3 multipart upload id, or the local staging file) with the committed parts' ETags,
-- and the append lease. upload_offset, not offset: OFFSET is reserved in PostgreSQL.
CREATE TABLE upload_sessions (
    user_id       TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    mime_type     TEXT   NOT NULL,
    size          BIGINT NOT NULL,
    tags          TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    upload_offset BIGINT NOT NULL,
    hash_state    TEXT   NOT NULL,
    path          TEXT   NOT NULL,
    handle        TEXT   NOT NULL,
    parts         TEXT   NOT NULL,
    lease_token   TEXT,
    lease_until   BIGINT,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX upload_sessions_expiry ON upload_sessions (expires_at);
