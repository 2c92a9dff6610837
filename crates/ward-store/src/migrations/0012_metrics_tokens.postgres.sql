-- API tokens with the metrics scope: they read only GET /metrics, filtered to
-- their company's series (issue 15: /metrics named every company).
ALTER TABLE api_tokens ADD COLUMN metrics BIGINT NOT NULL DEFAULT 0 CHECK (metrics IN (0, 1));
