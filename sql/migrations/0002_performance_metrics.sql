-- LLM serving latency, one row per request, 30-day retention (metrics-tables.md).
-- _kafka_* and non_replicated_deduplication_window: see 0001_cost_metrics.sql.
CREATE TABLE IF NOT EXISTS performance_metrics_ts
(
    timestamp                 DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    customer_id               UUID,
    service_id                UUID,
    service_type              LowCardinality(String),
    model_name                LowCardinality(String),
    request_id                UUID,
    latency_ms                Float64,
    throughput_tokens_per_sec Float64,
    gpu_utilization           Float64,
    kv_cache_utilization      Float64,
    batch_size                Int32,
    prompt_tokens             Int32,
    completion_tokens         Int32,
    total_tokens              Int32,
    _kafka_topic              LowCardinality(String) DEFAULT '',
    _kafka_partition          UInt32 DEFAULT 0,
    _kafka_offset             UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (customer_id, service_id, timestamp)
TTL toDateTime(timestamp) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;

-- Hourly rollup. Latency percentiles are t-digest states, not averages: merging the states of
-- several hours (or services) gives the percentile of all their requests, with the t-digest's
-- bounded size and small rank error instead of storing every latency.
CREATE TABLE IF NOT EXISTS performance_metrics_hourly
(
    hour                    DateTime('UTC'),
    customer_id             UUID,
    service_id              UUID,
    service_type            LowCardinality(String),
    model_name              LowCardinality(String),
    latency_quantiles       AggregateFunction(quantilesTDigest(0.5, 0.95, 0.99), Float64),
    avg_latency_ms          AggregateFunction(avg, Float64),
    max_latency_ms          AggregateFunction(max, Float64),
    avg_throughput          AggregateFunction(avg, Float64),
    avg_gpu_utilization     AggregateFunction(avg, Float64),
    avg_kv_cache_utilization AggregateFunction(avg, Float64),
    total_prompt_tokens     AggregateFunction(sum, Int32),
    total_completion_tokens AggregateFunction(sum, Int32),
    total_tokens            AggregateFunction(sum, Int32),
    requests                AggregateFunction(count)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (customer_id, service_id, hour, service_type, model_name)
TTL hour + INTERVAL 30 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS performance_metrics_hourly_mv TO performance_metrics_hourly AS
SELECT
    toStartOfHour(timestamp) AS hour,
    customer_id,
    service_id,
    service_type,
    model_name,
    quantilesTDigestState(0.5, 0.95, 0.99)(latency_ms) AS latency_quantiles,
    avgState(latency_ms) AS avg_latency_ms,
    maxState(latency_ms) AS max_latency_ms,
    avgState(throughput_tokens_per_sec) AS avg_throughput,
    avgState(gpu_utilization) AS avg_gpu_utilization,
    avgState(kv_cache_utilization) AS avg_kv_cache_utilization,
    sumState(prompt_tokens) AS total_prompt_tokens,
    sumState(completion_tokens) AS total_completion_tokens,
    sumState(total_tokens) AS total_tokens,
    countState() AS requests
FROM performance_metrics_ts
GROUP BY hour, customer_id, service_id, service_type, model_name;
