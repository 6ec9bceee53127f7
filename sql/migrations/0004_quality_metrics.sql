-- LLM response quality scores, one row per request, 30-day retention (metrics-tables.md).
-- _kafka_* and non_replicated_deduplication_window: see 0001_cost_metrics.sql.
CREATE TABLE IF NOT EXISTS quality_metrics_ts
(
    timestamp              DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    customer_id            UUID,
    service_id             UUID,
    request_id             UUID,
    model_name             LowCardinality(String),
    relevance_score        Float64,
    coherence_score        Float64,
    factuality_score       Float64,
    hallucination_detected UInt8,
    toxicity_score         Float64,
    overall_quality_score  Float64,
    prompt_hash            String,
    latency_ms             Float64,
    _kafka_topic           LowCardinality(String) DEFAULT '',
    _kafka_partition       UInt32 DEFAULT 0,
    _kafka_offset          UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (customer_id, service_id, timestamp)
TTL toDateTime(timestamp) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;

CREATE TABLE IF NOT EXISTS quality_metrics_hourly
(
    hour                DateTime('UTC'),
    customer_id         UUID,
    service_id          UUID,
    model_name          LowCardinality(String),
    avg_quality         AggregateFunction(avg, Float64),
    min_quality         AggregateFunction(min, Float64),
    avg_relevance       AggregateFunction(avg, Float64),
    avg_coherence       AggregateFunction(avg, Float64),
    avg_factuality      AggregateFunction(avg, Float64),
    avg_toxicity        AggregateFunction(avg, Float64),
    max_toxicity        AggregateFunction(max, Float64),
    hallucinations      AggregateFunction(sum, UInt8),
    requests            AggregateFunction(count)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (customer_id, service_id, hour, model_name)
TTL hour + INTERVAL 30 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS quality_metrics_hourly_mv TO quality_metrics_hourly AS
SELECT
    toStartOfHour(timestamp) AS hour,
    customer_id,
    service_id,
    model_name,
    avgState(overall_quality_score) AS avg_quality,
    minState(overall_quality_score) AS min_quality,
    avgState(relevance_score) AS avg_relevance,
    avgState(coherence_score) AS avg_coherence,
    avgState(factuality_score) AS avg_factuality,
    avgState(toxicity_score) AS avg_toxicity,
    maxState(toxicity_score) AS max_toxicity,
    sumState(hallucination_detected) AS hallucinations,
    countState() AS requests
FROM quality_metrics_ts
GROUP BY hour, customer_id, service_id, model_name;
