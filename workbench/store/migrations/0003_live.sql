-- Live trading: strategies and their states, every order, fill and closed trade, equity per
-- candle, and every order the risk manager refused. Rows are written before they are acted on.
CREATE TABLE strategies (
    strategy_id     VARCHAR   PRIMARY KEY,
    spec_name       VARCHAR   NOT NULL,
    spec_json       VARCHAR   NOT NULL,
    params_json     VARCHAR   NOT NULL,
    exchange        VARCHAR   NOT NULL,
    symbol          VARCHAR   NOT NULL,
    timeframe       VARCHAR   NOT NULL,
    broker          VARCHAR   NOT NULL,  -- paper | ccxt
    allocation      DOUBLE PRECISION NOT NULL,  -- starting cash, quote currency
    state           VARCHAR   NOT NULL,  -- running | paused | stopped | error
    error           VARCHAR,             -- traceback of the failure that set state=error
    created_at      TIMESTAMP NOT NULL DEFAULT now(),
    updated_at      TIMESTAMP NOT NULL DEFAULT now()
);

CREATE TABLE strategy_events (
    strategy_id VARCHAR   NOT NULL,
    ts          TIMESTAMP NOT NULL DEFAULT now(),
    kind        VARCHAR   NOT NULL,      -- state | signal | error | reconcile
    detail      VARCHAR   NOT NULL
);

CREATE TABLE orders (
    client_order_id   VARCHAR   PRIMARY KEY,
    strategy_id       VARCHAR   NOT NULL,
    exchange          VARCHAR   NOT NULL,
    symbol            VARCHAR   NOT NULL,
    side              VARCHAR   NOT NULL,
    type              VARCHAR   NOT NULL,
    amount            DOUBLE PRECISION NOT NULL,
    price             DOUBLE PRECISION,
    stop_price        DOUBLE PRECISION,
    purpose           VARCHAR   NOT NULL,
    state             VARCHAR   NOT NULL,
    filled            DOUBLE PRECISION NOT NULL,
    average_price     DOUBLE PRECISION,
    exchange_order_id VARCHAR,
    reason            VARCHAR,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);

CREATE TABLE fills (
    fill_id         VARCHAR   PRIMARY KEY,
    client_order_id VARCHAR   NOT NULL,
    strategy_id     VARCHAR   NOT NULL,
    symbol          VARCHAR   NOT NULL,
    side            VARCHAR   NOT NULL,
    amount          DOUBLE PRECISION NOT NULL,
    price           DOUBLE PRECISION NOT NULL,
    fee             DOUBLE PRECISION NOT NULL,
    purpose         VARCHAR   NOT NULL,
    ts              TIMESTAMP NOT NULL
);

CREATE TABLE round_trips (
    strategy_id VARCHAR   NOT NULL,
    trade_no    INTEGER   NOT NULL,
    symbol      VARCHAR   NOT NULL,
    direction   VARCHAR   NOT NULL,
    entry_time  TIMESTAMP NOT NULL,
    exit_time   TIMESTAMP NOT NULL,
    amount      DOUBLE PRECISION NOT NULL,
    entry_price DOUBLE PRECISION NOT NULL,
    exit_price  DOUBLE PRECISION NOT NULL,
    pnl         DOUBLE PRECISION NOT NULL,
    fees        DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (strategy_id, trade_no)
);

CREATE TABLE equity (
    strategy_id VARCHAR   NOT NULL,
    ts          TIMESTAMP NOT NULL,  -- open time of the closed bar it was marked on
    equity      DOUBLE PRECISION NOT NULL,
    cash        DOUBLE PRECISION NOT NULL,
    position    DOUBLE PRECISION NOT NULL,
    price       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (strategy_id, ts)
);

CREATE TABLE refused_orders (
    strategy_id VARCHAR   NOT NULL,
    ts          TIMESTAMP NOT NULL,
    symbol      VARCHAR   NOT NULL,
    side        VARCHAR   NOT NULL,
    amount      DOUBLE PRECISION NOT NULL,
    purpose     VARCHAR   NOT NULL,
    rule        VARCHAR   NOT NULL,
    detail      VARCHAR   NOT NULL   -- JSON: the numbers that refused it
);
