-- The last line of a store's write journal (`workbench.store.journal`) applied to this
-- database: written in the same transaction as the lines, so each applies exactly once.
CREATE TABLE journal_applied (
    journal VARCHAR PRIMARY KEY,
    seq     BIGINT  NOT NULL
);
