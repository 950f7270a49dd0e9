-- Candles: one row per bar, keyed on its series and its open time (UTC, no time zone stored).
CREATE TABLE candles (
    exchange  VARCHAR   NOT NULL,
    symbol    VARCHAR   NOT NULL,
    timeframe VARCHAR   NOT NULL,
    ts        TIMESTAMP NOT NULL,
    open      DOUBLE    NOT NULL,
    high      DOUBLE    NOT NULL,
    low       DOUBLE    NOT NULL,
    close     DOUBLE    NOT NULL,
    volume    DOUBLE    NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, ts)
);
