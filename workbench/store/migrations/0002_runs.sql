-- Backtest runs: what was run (spec, its hash, parameters, data range, costs, package version),
-- what came out (stats), and the details (trades, equity, one row per sweep combination).
CREATE TABLE runs (
    run_id          VARCHAR   PRIMARY KEY,
    kind            VARCHAR   NOT NULL,  -- backtest | sweep | optuna | walkforward
    created_at      TIMESTAMP NOT NULL DEFAULT now(),
    spec_name       VARCHAR   NOT NULL,
    spec_json       VARCHAR   NOT NULL,
    spec_hash       VARCHAR   NOT NULL,
    params_json     VARCHAR   NOT NULL,  -- the combination run (best one for searches)
    exchange        VARCHAR   NOT NULL,
    symbols_json    VARCHAR   NOT NULL,
    timeframe       VARCHAR   NOT NULL,
    start_ts        TIMESTAMP NOT NULL,  -- first bar open (UTC)
    end_ts          TIMESTAMP NOT NULL,  -- last bar open (UTC)
    cash            DOUBLE PRECISION NOT NULL,
    fee_rate        DOUBLE PRECISION NOT NULL,
    slippage        DOUBLE PRECISION NOT NULL,
    shared_cash     BOOLEAN   NOT NULL,
    package_version VARCHAR   NOT NULL,
    combinations    BIGINT    NOT NULL DEFAULT 1,
    stats_json      VARCHAR   NOT NULL,
    extra_json      VARCHAR   NOT NULL DEFAULT '{}'
);

CREATE TABLE run_trades (
    run_id      VARCHAR   NOT NULL,
    trade_no    INTEGER   NOT NULL,
    symbol      VARCHAR   NOT NULL,
    side        VARCHAR   NOT NULL,
    entry_time  TIMESTAMP NOT NULL,
    entry_price DOUBLE PRECISION NOT NULL,
    size        DOUBLE PRECISION NOT NULL,
    exit_time   TIMESTAMP,
    exit_price  DOUBLE PRECISION,
    exit_reason VARCHAR   NOT NULL,
    fees        DOUBLE PRECISION NOT NULL,
    pnl         DOUBLE PRECISION NOT NULL,
    return_frac DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, trade_no)
);

CREATE TABLE run_equity (
    run_id VARCHAR   NOT NULL,
    ts     TIMESTAMP NOT NULL,
    equity DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, ts)
);

CREATE TABLE sweep_results (
    run_id            VARCHAR NOT NULL,
    combination       BIGINT  NOT NULL,
    params_json       VARCHAR NOT NULL,
    total_return      DOUBLE PRECISION,
    cagr              DOUBLE PRECISION,
    sharpe            DOUBLE PRECISION,
    sortino           DOUBLE PRECISION,
    calmar            DOUBLE PRECISION,
    max_drawdown      DOUBLE PRECISION,
    max_drawdown_bars BIGINT,
    max_drawdown_days DOUBLE PRECISION,
    win_rate          DOUBLE PRECISION,
    profit_factor     DOUBLE PRECISION,
    expectancy        DOUBLE PRECISION,
    trades            BIGINT,
    exposure          DOUBLE PRECISION,
    fees              DOUBLE PRECISION,
    final_equity      DOUBLE PRECISION,
    PRIMARY KEY (run_id, combination)
);
