-- Optuna searches kept under a name (`workbench sweep --search optuna --study NAME`), so a later
-- search goes on from every trial told so far: what the study searches, and its trials.
CREATE TABLE studies (
    study      VARCHAR   PRIMARY KEY,
    spec_name  VARCHAR   NOT NULL,
    setup_json VARCHAR   NOT NULL,  -- spec hash, grid, constraints, metric, data and costs
    created_at TIMESTAMP NOT NULL DEFAULT now()
);

CREATE TABLE study_trials (
    study       VARCHAR   NOT NULL,
    trial       INTEGER   NOT NULL,  -- Optuna's trial number, from 0
    state       VARCHAR   NOT NULL,  -- complete | pruned (broke a constraint: never run)
    params_json VARCHAR   NOT NULL,  -- every parameter of the spec
    stats_json  VARCHAR   NOT NULL,  -- the sweep statistics; {} when pruned
    told_at     TIMESTAMP NOT NULL DEFAULT now(),
    PRIMARY KEY (study, trial)
);
