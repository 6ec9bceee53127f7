-- GPU/CPU utilization, 1-minute samples, 90-day retention (metrics-tables.md).
-- _kafka_* and non_replicated_deduplication_window: see 0001_cost_metrics.sql.
CREATE TABLE IF NOT EXISTS resource_metrics_ts
(
    timestamp           DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    customer_id         UUID,
    instance_id         String,
    instance_type       LowCardinality(String),
    gpu_index           Int32,
    gpu_utilization     Float64,
    gpu_memory_used_mb  Float64,
    gpu_memory_total_mb Float64,
    gpu_temperature     Float64,
    cpu_utilization     Float64,
    memory_used_gb      Float64,
    memory_total_gb     Float64,
    network_rx_mbps     Float64,
    network_tx_mbps     Float64,
    _kafka_topic        LowCardinality(String) DEFAULT '',
    _kafka_partition    UInt32 DEFAULT 0,
    _kafka_offset       UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (customer_id, instance_id, timestamp)
TTL toDateTime(timestamp) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;

-- Hourly rollup per instance (all GPUs of the instance together).
CREATE TABLE IF NOT EXISTS resource_metrics_hourly
(
    hour                    DateTime('UTC'),
    customer_id             UUID,
    instance_id             String,
    instance_type           LowCardinality(String),
    avg_gpu_utilization     AggregateFunction(avg, Float64),
    max_gpu_utilization     AggregateFunction(max, Float64),
    avg_gpu_memory_used_mb  AggregateFunction(avg, Float64),
    max_gpu_memory_used_mb  AggregateFunction(max, Float64),
    max_gpu_temperature     AggregateFunction(max, Float64),
    avg_cpu_utilization     AggregateFunction(avg, Float64),
    max_cpu_utilization     AggregateFunction(max, Float64),
    avg_memory_used_gb      AggregateFunction(avg, Float64),
    avg_network_rx_mbps     AggregateFunction(avg, Float64),
    avg_network_tx_mbps     AggregateFunction(avg, Float64),
    samples                 AggregateFunction(count)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (customer_id, instance_id, hour, instance_type)
TTL hour + INTERVAL 90 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS resource_metrics_hourly_mv TO resource_metrics_hourly AS
SELECT
    toStartOfHour(timestamp) AS hour,
    customer_id,
    instance_id,
    instance_type,
    avgState(gpu_utilization) AS avg_gpu_utilization,
    maxState(gpu_utilization) AS max_gpu_utilization,
    avgState(gpu_memory_used_mb) AS avg_gpu_memory_used_mb,
    maxState(gpu_memory_used_mb) AS max_gpu_memory_used_mb,
    maxState(gpu_temperature) AS max_gpu_temperature,
    avgState(cpu_utilization) AS avg_cpu_utilization,
    maxState(cpu_utilization) AS max_cpu_utilization,
    avgState(memory_used_gb) AS avg_memory_used_gb,
    avgState(network_rx_mbps) AS avg_network_rx_mbps,
    avgState(network_tx_mbps) AS avg_network_tx_mbps,
    countState() AS samples
FROM resource_metrics_ts
GROUP BY hour, customer_id, instance_id, instance_type;
