-- Risk on the whole account: the limits in force (changed at run time, applied to the next
-- order), the account drawdown guard's memory per quote currency, and the kill switch.
CREATE TABLE risk_limits (
    scope      VARCHAR   PRIMARY KEY,  -- 'account:<exchange>' or a strategy id
    limits     VARCHAR   NOT NULL,     -- JSON: the limits set (absent: no limit)
    updated_by VARCHAR   NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE account_risk (
    exchange VARCHAR NOT NULL,
    quote    VARCHAR NOT NULL,
    state    VARCHAR NOT NULL,          -- JSON: peak and day-start P&L, cool-down, halts
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (exchange, quote)
);
-- Every halt and resume, in order; the newest row of an exchange says whether it is halted.
CREATE TABLE halts (
    seq      BIGINT    PRIMARY KEY,
    exchange VARCHAR   NOT NULL,
    halted   BOOLEAN   NOT NULL,        -- true: halt, false: resume
    flatten  BOOLEAN   NOT NULL,
    reason   VARCHAR   NOT NULL,
    by_user  VARCHAR   NOT NULL,
    halted_at TIMESTAMP NOT NULL
);
