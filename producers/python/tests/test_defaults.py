"""The specification's module-level entry points: ``ch_logger`` and ``get_clickhouse_client()``,
and the flush at interpreter exit (child processes, so the real atexit runs)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ingest_sdk
from ingest_sdk import LoggerNotConfigured, MetricsClient, exit_flush
from ingest_sdk.defaults import DefaultEvolutionLogger

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run_python(code, env, timeout=90):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "INGEST_", "CLICKHOUSE_", "QUERY_"))}
    full.update({"PYTHONPATH": SRC, **env})
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=timeout)


def test_unconfigured_ch_logger_refuses_the_first_call_naming_the_setting(monkeypatch):
    monkeypatch.delenv("KAFKA_BROKERS", raising=False)
    logger = DefaultEvolutionLogger()
    assert logger.enabled is False
    with pytest.raises(LoggerNotConfigured, match="KAFKA_BROKERS.*ch_logger.configure"):
        logger.log_llm_interaction(model="m", messages=[], response="r", cost=0.0, execution_time=0.0)
    assert logger._logger is None and logger.events_acknowledged == 0


def test_ch_logger_is_the_module_level_default_with_the_spec_signatures():
    assert isinstance(ingest_sdk.ch_logger, DefaultEvolutionLogger)
    from ingest_sdk import ch_logger  # the seed's import, with only the module changed

    assert ch_logger is ingest_sdk.ch_logger
    for name in ("log_evolution_run", "update_evolution_run", "log_generation", "log_individual", "log_pareto_front", "log_lineage", "log_llm_interaction", "log_agent_action", "log_action"):
        assert callable(getattr(ch_logger, name)), name


def test_configured_ch_logger_queues_and_validates(monkeypatch):
    monkeypatch.delenv("KAFKA_BROKERS", raising=False)
    logger = DefaultEvolutionLogger().configure(brokers="127.0.0.1:1", topic_prefix="t.", delivery_timeout_ms=1000, flush_at_exit=False)
    assert logger.enabled
    try:
        logger.log_generation(run_id="r", generation=1, num_individuals=2, best_score=0.5, avg_score=0.4, pareto_size=1, total_cost=0.1)
        with pytest.raises(ingest_sdk.EventValidationError, match=r"generations\[0\]\.num_individuals: expected a 32-bit integer"):
            logger.log_generation(run_id="r", generation=1, num_individuals="two", best_score=0.5, avg_score=0.4, pareto_size=1, total_cost=0.1)
        # One event queued, the refused one not: the SDK's own count. (len() of the librdkafka
        # producer also counts its error and log events, which a broker that refuses
        # connections adds until a poll serves them.)
        assert logger.producer._produced == 1
    finally:
        logger.producer._producer.purge()
        logger.producer._closed = True


def test_get_clickhouse_client_is_shared_and_refuses_bad_settings(monkeypatch):
    monkeypatch.setenv("KAFKA_BROKERS", "127.0.0.1:1")
    monkeypatch.setenv("INGEST_FLUSH_AT_EXIT", "0")
    monkeypatch.setenv("QUERY_WORKER_URL", "http://127.0.0.1:1")
    monkeypatch.setattr(ingest_sdk.defaults, "_client", None)
    client = ingest_sdk.get_clickhouse_client()
    assert isinstance(client, MetricsClient) and ingest_sdk.get_clickhouse_client() is client
    assert client.query_side == "worker query endpoint http://127.0.0.1:1/query"
    started = time.monotonic()
    assert client.ping(timeout_s=1) is False
    details = client.ping_details(timeout_s=1)
    assert details["queries"] is False and "127.0.0.1:1" in details["kafka"]
    assert time.monotonic() - started < 10
    assert client not in exit_flush._producers  # opted out by INGEST_FLUSH_AT_EXIT=0
    client._closed = True
    monkeypatch.setenv("INGEST_FLUSH_AT_EXIT", "maybe")
    with pytest.raises(ValueError, match="INGEST_FLUSH_AT_EXIT must be"):
        ingest_sdk.get_clickhouse_client(brokers="127.0.0.1:1")
    with pytest.raises(ValueError, match="security_protocol"):
        ingest_sdk.get_clickhouse_client(brokers="127.0.0.1:1", security_protocol="TLS", flush_at_exit=False)


def test_producers_register_for_the_exit_flush_unless_opted_out(monkeypatch):
    monkeypatch.delenv("INGEST_FLUSH_AT_EXIT", raising=False)
    on = ingest_sdk.IngestProducer(brokers="127.0.0.1:1")
    off = ingest_sdk.IngestProducer(brokers="127.0.0.1:1", flush_at_exit=False)
    try:
        assert on in exit_flush._producers and off not in exit_flush._producers
        on.close(0.1)
        assert on not in exit_flush._producers  # closed: nothing left to flush at exit
    finally:
        off._closed = True


UNREACHABLE_EXIT = """
from ingest_sdk import IngestProducer
p = IngestProducer(brokers="127.0.0.1:1", topic_prefix="exit.", delivery_timeout_ms=1500)
p.insert_cost_metrics([{"customer_id": "123e4567-e89b-12d3-a456-426614174000", "cloud_provider": "aws", "service_name": "ec2", "instance_id": "i-1", "instance_type": "m5", "region": "r", "cost_per_hour": 1.0, "utilization_percent": 1.0, "is_spot": 0, "is_reserved": 0}])
print("queued")
"""


def test_a_failed_exit_flush_is_reported_on_stderr():
    started = time.monotonic()
    done = run_python(UNREACHABLE_EXIT, {})
    assert done.stdout.strip() == "queued"
    assert "at exit, events queued by IngestProducer were not delivered" in done.stderr, done.stderr
    assert "exit.cost_metrics" in done.stderr and "127.0.0.1:1" in done.stderr
    assert time.monotonic() - started < 30
    # Opted out: no flush at exit, so no report (the events are dropped by librdkafka's exit).
    quiet = run_python(UNREACHABLE_EXIT, {"INGEST_FLUSH_AT_EXIT": "0"})
    assert quiet.returncode == 0 and "not delivered" not in quiet.stderr


@pytest.mark.integration
def test_events_emitted_without_close_arrive_at_exit(brokers, unique_prefix):
    """A process that logs and inserts through the spec's entry points and exits without
    close()/flush(): every event is on its topic afterwards."""
    from test_kafka_integration import consume, create_topics

    create_topics(brokers, unique_prefix, ["cost_metrics", "llm_logs", "generations"], 1)
    code = """
from ingest_sdk import ch_logger, get_clickhouse_client
client = get_clickhouse_client()
client.insert_cost_metrics([{"customer_id": "123e4567-e89b-12d3-a456-426614174000", "cloud_provider": "aws", "service_name": "ec2", "instance_id": "i-%d" % i, "instance_type": "m5", "region": "r", "cost_per_hour": 1.0, "utilization_percent": 1.0, "is_spot": 0, "is_reserved": 0} for i in range(50)])
for i in range(20):
    ch_logger.log_llm_interaction(model="m", messages=[{"role": "user", "content": str(i)}], response="r", cost=0.01, execution_time=1.0)
ch_logger.log_generation(run_id="run_exit", generation=1, num_individuals=20, best_score=0.9, avg_score=0.5, pareto_size=2, total_cost=1.0)
print("exiting without close")
"""
    # linger 1 s: without the flush at exit, nothing would have left the process yet.
    env = {"KAFKA_BROKERS": brokers, "KAFKA_TOPIC_PREFIX": unique_prefix, "QUERY_WORKER_URL": "http://127.0.0.1:1"}
    done = run_python(code.replace("get_clickhouse_client()", "get_clickhouse_client(linger_ms=1000)").replace("from ingest_sdk import ch_logger, get_clickhouse_client", "from ingest_sdk import ch_logger, get_clickhouse_client\nch_logger.configure(linger_ms=1000)"), env)
    assert done.returncode == 0 and "exiting without close" in done.stdout, done.stderr
    assert "not delivered" not in done.stderr
    got = consume(brokers, [f"{unique_prefix}cost_metrics", f"{unique_prefix}llm_logs", f"{unique_prefix}generations"], 71)
    counts = {}
    for topic, _, _, _ in got:
        counts[topic[len(unique_prefix):]] = counts.get(topic[len(unique_prefix):], 0) + 1
    assert counts == {"cost_metrics": 50, "llm_logs": 20, "generations": 1}
