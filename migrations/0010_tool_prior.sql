-- The fitted tool prior (gateway/services/tool_prior.py), kept so that a restart reads it instead of refitting
-- it from scratch (seconds of CPU for thousands of intents). One row per embedding model; `intents` is how many
-- successful intents were remembered when it was fitted, so the refit rule (REFIT_SHARE) carries over restarts.
CREATE TABLE IF NOT EXISTS tool_prior (
    model      text PRIMARY KEY,
    tools      text[] NOT NULL,
    dimensions int NOT NULL CHECK (dimensions > 0),
    weights    bytea NOT NULL,  -- little-endian float64, (dimensions + 1) x tools, row-major; the last row is the bias
    samples    int NOT NULL CHECK (samples > 0),
    intents    int NOT NULL CHECK (intents >= 0),
    fitted_at  timestamptz NOT NULL DEFAULT now()
);
