-- The dataset id (capabilities `datasetId`): one row, made at the first start, so clients
-- can tell "the server's data was reset" from a bad cursor. thumb_failed remembers that a
-- thumbnail cannot be made, so a bad or hostile image is decoded at most once.
CREATE TABLE dataset (
    k  INTEGER PRIMARY KEY,
    id TEXT    NOT NULL
);
ALTER TABLE assets ADD COLUMN thumb_failed BIGINT;
