-- Operations: the alerts raised (and whether they reached a sink), and the processes that
-- ran an engine (a start without a stop is a crash; the heartbeat is /ready's write probe).
CREATE TABLE alerts (
    alert_id    VARCHAR   PRIMARY KEY,
    ts          TIMESTAMP NOT NULL,
    rule        VARCHAR   NOT NULL,
    level       VARCHAR   NOT NULL,   -- info | warning | critical
    strategy_id VARCHAR,
    title       VARCHAR   NOT NULL,
    body        VARCHAR   NOT NULL,
    status      VARCHAR   NOT NULL,   -- queued | sent | failed | no_sink
    attempts    INTEGER   NOT NULL,
    error       VARCHAR,
    sent_at     TIMESTAMP
);

CREATE TABLE process_runs (
    run_id     VARCHAR   PRIMARY KEY,
    role       VARCHAR   NOT NULL,    -- serve | live
    host       VARCHAR   NOT NULL,
    pid        INTEGER   NOT NULL,
    started_at TIMESTAMP NOT NULL,
    beat_at    TIMESTAMP NOT NULL,
    stopped_at TIMESTAMP
);
