"""On the real broker (KAFKA_BROKERS; scripts/services.sh start): the spec's examples verbatim,
the Java client's partitions, acknowledgements, and delivery failures raised at flush().
Rows in ClickHouse through the worker, compared with the TS SDK's: test/integration/python-sdk.test.ts."""

import time

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import decode, load_fixture
from ingest_sdk import EVENT_TYPES, DeliveryError, EvolutionLogger, IngestProducer
from spec_examples import evolution_examples, metrics_examples

pytestmark = pytest.mark.integration


def create_topics(brokers, prefix, names, partitions):
    admin = AdminClient({"bootstrap.servers": brokers})
    futures = admin.create_topics([NewTopic(f"{prefix}{n}", num_partitions=partitions, replication_factor=1) for n in names])
    for f in futures.values():
        f.result(30)


def consume(brokers, topics, expected, timeout_s=60):
    """Every message of ``topics`` from the start: [(topic, partition, key, value)], exactly ``expected`` of them."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": f"pytest-{time.time_ns()}", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(topics)
    out = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None or msg.error():
                continue
            out.append((msg.topic(), msg.partition(), msg.key().decode(), msg.value()))
        # A little longer: more than expected would be a duplicate.
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            msg = c.poll(0.2)
            if msg is not None and not msg.error():
                out.append((msg.topic(), msg.partition(), msg.key().decode(), msg.value()))
    finally:
        c.close()
    assert len(out) == expected, f"consumed {len(out)} messages, expected {expected}"
    return out


def test_spec_examples_verbatim_reach_their_topics(brokers, unique_prefix):
    names = ["cost_metrics", "performance_metrics", "resource_metrics", "quality_metrics", "evolution_runs", "generations", "individuals", "code_lineages", "llm_logs"]
    create_topics(brokers, unique_prefix, names, 4)
    with IngestProducer(brokers=brokers, topic_prefix=unique_prefix) as client:
        metrics_examples(client)
    with EvolutionLogger(brokers=brokers, topic_prefix=unique_prefix) as ch_logger:
        evolution_examples(ch_logger, {"evolution": {"num_generations": 10}})
    assert client.events_acknowledged == 4 and ch_logger.events_acknowledged == 5
    got = consume(brokers, [f"{unique_prefix}{n}" for n in names], 9)
    by_type = {topic[len(unique_prefix):]: decode(topic[len(unique_prefix):], value) for topic, _, _, value in got}
    assert set(by_type) == set(names)
    assert by_type["cost_metrics"]["cost_per_hour"] == 0.192 and by_type["cost_metrics"]["instance_id"] == "i-1234567"
    assert abs(by_type["cost_metrics"]["timestamp"] - time.time() * 1000) < 600_000
    assert by_type["quality_metrics"]["latency_ms"] == 1250.0
    assert by_type["individuals"]["metrics"] == '{"accuracy":0.95,"size":1024}' and by_type["individuals"]["is_pareto"] is True
    assert by_type["evolution_runs"]["config"] == '{"evolution":{"num_generations":10}}'
    assert by_type["llm_logs"]["model"] == "claude-3-5-sonnet-20241022"


def test_same_partition_as_the_ts_sdk_for_every_key(brokers, unique_prefix):
    """6 partitions (not a power of two): librdkafka's murmur2_random must give the Java
    client's partition, which the TS SDK's partitioner gives (sdk-wire-cases.json)."""
    cases = load_fixture("sdk-wire-cases.json")["cases"]
    create_topics(brokers, unique_prefix, sorted(EVENT_TYPES), 6)
    with IngestProducer(brokers=brokers, topic_prefix=unique_prefix) as p:
        for c in cases:
            p.emit(c["type"], [c["record"]])
    got = consume(brokers, [f"{unique_prefix}{n}" for n in EVENT_TYPES], len(cases))
    want = sorted((f"{unique_prefix}{c['type']}", c["partitions"]["6"], c["key"], bytes.fromhex(c["hex"])) for c in cases)
    assert sorted(got) == want  # same partition, key and bytes as the TS SDK, each once
    assert len({part for _, part, _, _ in got}) >= 4


def test_delivery_failure_raises_at_flush_and_reaches_the_callback(brokers, unique_prefix):
    """No such topic (the broker does not create topics): each event fails after the delivery
    timeout; flush() raises naming the topic, the cause and the brokers, and the callback heard each."""
    heard = []
    p = IngestProducer(brokers=brokers, topic_prefix=unique_prefix, delivery_timeout_ms=3000, on_delivery_error=heard.append)
    events = [{"customer_id": "123e4567-e89b-12d3-a456-426614174000", "cloud_provider": "aws", "service_name": "ec2", "instance_id": f"i-{i}", "instance_type": "m5", "region": "r", "cost_per_hour": 1.0, "utilization_percent": 1.0, "is_spot": 0, "is_reserved": 0} for i in range(3)]
    p.insert_cost_metrics(events)
    with pytest.raises(DeliveryError) as info:
        p.flush(30)
    message = str(info.value)
    assert "3 event(s) not delivered" in message and f"{unique_prefix}cost_metrics" in message and brokers in message
    assert len(info.value.failures) == 3 and len(heard) == 3
    # Reported once: the next flush has nothing left to raise.
    p.flush(5)


def test_unreachable_broker_is_named_at_flush():
    p = IngestProducer(brokers="127.0.0.1:1", topic_prefix="nowhere.", delivery_timeout_ms=2000)
    p.insert_cost_metrics([{"customer_id": "123e4567-e89b-12d3-a456-426614174000", "cloud_provider": "aws", "service_name": "ec2", "instance_id": "i", "instance_type": "m5", "region": "r", "cost_per_hour": 1.0, "utilization_percent": 1.0, "is_spot": 0, "is_reserved": 0}])
    started = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        p.close(30)
    assert time.monotonic() - started < 20
    message = str(info.value)
    assert "127.0.0.1:1" in message and "timed out" in message.lower()
    assert "Connection refused" in message or "Connect to" in message
