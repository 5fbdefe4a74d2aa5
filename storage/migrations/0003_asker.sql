-- Clipstream's PostgreSQL schema, version 3 (issue 21): the node that
-- queued a piece of work only other nodes may take (a run of segments it
-- asks for help with: what nobody takes it renders itself, without the
-- queue's round trip).
ALTER TABLE work ADD COLUMN asker text;
