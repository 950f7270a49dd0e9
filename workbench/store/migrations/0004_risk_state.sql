-- The drawdown guard's memory per strategy, so a restart keeps a running cool-down and today's
-- start. Written when the guard trips or a new day starts; the peak rises in between are
-- rebuilt from the equity marks stored after `marked_at`.
CREATE TABLE risk_state (
    strategy_id      VARCHAR   PRIMARY KEY,
    marked_at        TIMESTAMP NOT NULL,  -- open time of the closed bar the state was taken at
    peak_equity      DOUBLE PRECISION NOT NULL,
    day_start        TIMESTAMP NOT NULL,
    day_start_equity DOUBLE PRECISION NOT NULL,
    halted_until     TIMESTAMP,           -- NULL: never halted
    halts            BIGINT[]  NOT NULL,  -- bars (epoch ms) the guard tripped at
    updated_at       TIMESTAMP NOT NULL DEFAULT now()
);
