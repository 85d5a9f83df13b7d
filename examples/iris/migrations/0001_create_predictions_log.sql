-- Where the service records the predictions it made, for later monitoring.
CREATE TABLE predictions_log (
    id INTEGER PRIMARY KEY,
    model_version TEXT NOT NULL,
    species TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX predictions_log_version ON predictions_log (model_version);
