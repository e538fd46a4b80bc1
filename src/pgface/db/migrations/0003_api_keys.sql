-- API keys of the HTTP server. Only a sha256 of each key is kept; the key is shown once.
CREATE TABLE IF NOT EXISTS api_keys (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL,
    key_id         text NOT NULL UNIQUE,
    secret_sha256  bytea NOT NULL CHECK (length(secret_sha256) = 32),
    scopes         text[] NOT NULL
                   CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write']),
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);
-- A name may be reused once its key is revoked.
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_active_name_idx ON api_keys (name)
    WHERE revoked_at IS NULL;
