-- Live trading on real venues: fills are replayed in the order they were booked (a sequence
-- per strategy, never by id); fees are kept in the asset the venue took them in, with their
-- value in quote; each strategy remembers where its warm-up started (a restart replays from
-- there, so its indicators equal a never-stopped run's) and the problem it is degraded by.
ALTER TABLE fills ADD COLUMN seq BIGINT;
ALTER TABLE fills ADD COLUMN fee_currency VARCHAR;
ALTER TABLE fills ADD COLUMN fee_quote DOUBLE PRECISION;
UPDATE fills SET seq = ordered.n
FROM (SELECT fill_id, row_number() OVER (PARTITION BY strategy_id ORDER BY ts, fill_id) AS n
      FROM fills) AS ordered
WHERE fills.fill_id = ordered.fill_id;
ALTER TABLE strategies ADD COLUMN seed_from TIMESTAMP;
ALTER TABLE strategies ADD COLUMN health VARCHAR;
