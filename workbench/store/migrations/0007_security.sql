-- Users and roles, login sessions, failed-login throttling, and the audit log.
-- Passwords are argon2 hashes; a session is known by the SHA-256 of its token, never the token.
CREATE TABLE users (
    name          VARCHAR   PRIMARY KEY,
    role          VARCHAR   NOT NULL,  -- viewer | trader | admin
    password_hash VARCHAR,             -- argon2id; NULL for users who sign in through OAuth
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

CREATE TABLE auth_sessions (
    token_hash VARCHAR   PRIMARY KEY,
    user_name  VARCHAR   NOT NULL,
    address    VARCHAR,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ended_at   TIMESTAMP,              -- logout, password or role change, user removed
    end_reason VARCHAR
);

-- One row per user name and per client address that failed to log in.
CREATE TABLE login_throttle (
    kind         VARCHAR   NOT NULL,   -- user | address
    subject      VARCHAR   NOT NULL,
    failures     INTEGER   NOT NULL,   -- consecutive failures since the last lockout or success
    lockouts     INTEGER   NOT NULL,   -- lockouts in a row: each doubles the next one
    locked_until TIMESTAMP,
    updated_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (kind, subject)
);

-- Append-only: who did what, when, to what, and how it went. Each row's hash covers its
-- content and the previous row's hash, so an edited or deleted row breaks the chain.
CREATE TABLE audit_log (
    seq         BIGINT    PRIMARY KEY,
    ts          TIMESTAMP NOT NULL,
    actor       VARCHAR   NOT NULL,
    address     VARCHAR,
    action      VARCHAR   NOT NULL,
    target      VARCHAR,
    before_json VARCHAR,
    after_json  VARCHAR,
    result      VARCHAR   NOT NULL,    -- allowed | refused | failed
    reason      VARCHAR,
    prev_hash   VARCHAR   NOT NULL,
    row_hash    VARCHAR   NOT NULL
);
