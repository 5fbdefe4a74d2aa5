-- Clipstream's PostgreSQL schema, version 1 (issue 21). Applied once, in
-- one transaction, by `storage/src/repo/postgres.rs` at open.

-- Every collection of the `Repo` trait: `collection` is
-- `Collection::name()`, `key` the record's key. COLLATE "C" orders keys
-- by their UTF-8 bytes, as sled does, so scans and pages agree across
-- repositories and the primary key's index serves `scan_prefix`.
CREATE TABLE records (
    collection text NOT NULL,
    key text COLLATE "C" NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (collection, key)
);
