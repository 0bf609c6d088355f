-- Spaces (docs/protocol.md, "Spaces"): libraries several users share. A space's assets and
-- upload sessions live in the same tables as a user's, keyed by the library key
-- `space.<spaceId>` in user_id (no user id contains a dot, so the two never meet).
-- space_members is the membership every instance reads on every space request, so an
-- admin's change holds at once everywhere. updated_by / created_by name the member who made
-- an asset's latest version / opened a session (NULL in personal libraries).
CREATE TABLE space_members (
    space_id TEXT   NOT NULL,
    user_id  TEXT   NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (space_id, user_id)
);
ALTER TABLE assets ADD COLUMN updated_by TEXT;
ALTER TABLE upload_sessions ADD COLUMN created_by TEXT;
