-- Cloud costs, 1-hour granularity, 90-day retention (metrics-tables.md).
-- _kafka_* columns record where each row came from, so duplicates can be audited.
-- non_replicated_deduplication_window keeps the hashes of the last inserts, so the worker's
-- insert_deduplication_token makes a re-inserted batch (crash between insert and commit) a no-op.
CREATE TABLE IF NOT EXISTS cost_metrics_ts
(
    timestamp           DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    customer_id         UUID,
    cloud_provider      LowCardinality(String),
    service_name        LowCardinality(String),
    instance_id         String,
    instance_type       LowCardinality(String),
    region              LowCardinality(String),
    cost_per_hour       Float64,
    utilization_percent Float64,
    is_spot             UInt8,
    is_reserved         UInt8,
    _kafka_topic        LowCardinality(String) DEFAULT '',
    _kafka_partition    UInt32 DEFAULT 0,
    _kafka_offset       UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (customer_id, timestamp)
TTL toDateTime(timestamp) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;

-- Hourly rollup: aggregate states, so any roll-up of the rollup (day, week) stays exact.
CREATE TABLE IF NOT EXISTS cost_metrics_hourly
(
    hour                DateTime('UTC'),
    customer_id         UUID,
    cloud_provider      LowCardinality(String),
    service_name        LowCardinality(String),
    region              LowCardinality(String),
    instance_type       LowCardinality(String),
    total_cost          AggregateFunction(sum, Float64),
    avg_utilization     AggregateFunction(avg, Float64),
    max_utilization     AggregateFunction(max, Float64),
    samples             AggregateFunction(count),
    instances           AggregateFunction(uniq, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (customer_id, hour, cloud_provider, service_name, region, instance_type)
TTL hour + INTERVAL 90 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS cost_metrics_hourly_mv TO cost_metrics_hourly AS
SELECT
    toStartOfHour(timestamp) AS hour,
    customer_id,
    cloud_provider,
    service_name,
    region,
    instance_type,
    sumState(cost_per_hour) AS total_cost,
    avgState(utilization_percent) AS avg_utilization,
    maxState(utilization_percent) AS max_utilization,
    countState() AS samples,
    uniqState(instance_id) AS instances
FROM cost_metrics_ts
GROUP BY hour, customer_id, cloud_provider, service_name, region, instance_type;
