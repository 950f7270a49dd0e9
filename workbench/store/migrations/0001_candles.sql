-- Candles: one row per bar, keyed on its series and its open time (UTC, no time zone stored).
CREATE TABLE candles (
    exchange  VARCHAR   NOT NULL,
    symbol    VARCHAR   NOT NULL,
    timeframe VARCHAR   NOT NULL,
    ts        TIMESTAMP NOT NULL,
    open      DOUBLE PRECISION NOT NULL,
    high      DOUBLE PRECISION NOT NULL,
    low       DOUBLE PRECISION NOT NULL,
    close     DOUBLE PRECISION NOT NULL,
    volume    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, ts)
);
