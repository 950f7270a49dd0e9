-- Market rules stored with the candles: the lot step, minimum amount and minimum notional an
-- exchange applies to an order (0 = none), so a backtest can round and refuse like the venue.
CREATE TABLE market_rules (
    exchange     VARCHAR   NOT NULL,
    symbol       VARCHAR   NOT NULL,
    amount_step  DOUBLE PRECISION NOT NULL,
    min_amount   DOUBLE PRECISION NOT NULL,
    min_notional DOUBLE PRECISION NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (exchange, symbol)
);
