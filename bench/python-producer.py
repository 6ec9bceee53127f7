"""The Python SDK's throughput, for `npm run bench` (bench/python-producer-bench.ts runs it).

    KAFKA_BROKERS=... PYTHON bench/python-producer.py POOL.json TOPIC_PREFIX TOTAL [EVENTS_PER_CALL [RAW_TOPIC]]

PYTHON is the benchmark's interpreter (bench/python-env.ts: a venv with fastavro, as a user who
pip-installs the SDK gets; /usr/bin/python3 with Apache avro when fastavro cannot be installed).
INGEST_SDK_SRC: run another copy of producers/python/src (bench/python-sdk-ab.ts).

Sends TOTAL cost events from the pool (cycled) with IngestProducer.insert_cost_metrics, then
flush(); prints one JSON line of figures. With RAW_TOPIC, then sends the same keys and bytes
(encoded beforehand by the SDK's encoder, not timed) to RAW_TOPIC with confluent-kafka alone,
with the SDK's librdkafka settings and a poll(0) per call of EVENTS_PER_CALL, as the SDK does:
the transport's own speed on the SDK's bytes. Also times validation + Avro encoding alone (no Kafka)
over the same events, which shows what limits the SDK: one Python thread validates and encodes
every event before librdkafka (C, its own threads) batches, compresses and sends it.
"""

import json
import os
import sys
import time
from pathlib import Path

# INGEST_SDK_SRC: another copy of producers/python/src (a before/after comparison).
sys.path.insert(0, os.environ.get("INGEST_SDK_SRC") or str(Path(__file__).resolve().parents[1] / "producers" / "python" / "src"))

from ingest_sdk import EVENT_TYPES, IngestProducer, to_event_record  # noqa: E402
from ingest_sdk.event_types import SingleObjectEncoder  # noqa: E402
from ingest_sdk.wire_format import avro_backend  # noqa: E402


def raw_confluent(raw_topic: str, calls: list, per_call: int) -> dict:
    """confluent-kafka producing the SDK's own keys and bytes, with the SDK's settings."""
    from confluent_kafka import Producer
    from ingest_sdk.settings import ProducerSettings

    t = EVENT_TYPES["cost_metrics"]
    enc = SingleObjectEncoder()
    messages = []
    for call in calls:
        for i, e in enumerate(call):
            record = to_event_record(t, e, i)
            messages.append((str(record[t.partition_key]).encode("utf-8"), enc.encode(t, record)))
    # The SDK's librdkafka settings, with its delivery reports for failures only
    # (ingest_sdk/event_producer.py): the acknowledged count is what left the queue unfailed.
    config = ProducerSettings.from_env().librdkafka_config()
    config["delivery.report.only.error"] = True
    producer = Producer(config)
    failed = [0]

    def on_delivery(err, _msg):
        if err is not None:
            failed[0] += 1

    cpu0, t0 = time.process_time(), time.perf_counter()
    for n, (key, value) in enumerate(messages, 1):
        while True:
            try:
                producer.produce(raw_topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        if n % per_call == 0:
            producer.poll(0)
    producer.flush()
    seconds = time.perf_counter() - t0
    return {
        "events": len(messages),
        "seconds": round(seconds, 3),
        "eventsPerSec": round(len(messages) / seconds),
        "cpuSeconds": round(time.process_time() - cpu0, 2),
        "acknowledged": len(messages) - failed[0] - len(producer),
        "avroBytes": sum(len(v) for _, v in messages),
    }


def main(pool_path: str, prefix: str, total: int, per_call: int, raw_topic: str | None) -> None:
    pool = json.loads(Path(pool_path).read_text())
    calls = []
    for start in range(0, total, per_call):
        n = min(per_call, total - start)
        calls.append([pool[(start + i) % len(pool)] for i in range(n)])

    # Validation + encoding alone, on up to 20,000 events.
    t = EVENT_TYPES["cost_metrics"]
    enc = SingleObjectEncoder()
    sample = [e for call in calls for e in call][:20_000]
    t0 = time.perf_counter()
    for i, e in enumerate(sample):
        enc.encode(t, to_event_record(t, e, i))
    encode_rate = len(sample) / (time.perf_counter() - t0)

    cpu0, t0 = time.process_time(), time.perf_counter()
    with IngestProducer(topic_prefix=prefix) as client:
        for events in calls:
            client.insert_cost_metrics(events)
        queued = time.perf_counter()
    seconds = time.perf_counter() - t0
    # Before the confluent-kafka step, whose encoding and sending are not the SDK's.
    cpu_seconds = time.process_time() - cpu0
    raw = raw_confluent(raw_topic, calls, per_call) if raw_topic else None
    print(json.dumps({
        "eventType": "cost_metrics",
        "events": total,
        "calls": len(calls),
        "eventsPerCall": per_call,
        "seconds": round(seconds, 3),
        "eventsPerSec": round(total / seconds),
        "queueSeconds": round(queued - t0, 3),
        "cpuSeconds": round(cpu_seconds, 2),
        "validateEncodeOnlyEventsPerSec": round(encode_rate),
        "acknowledged": client.events_acknowledged,
        "avroBackend": avro_backend(),
        "python": sys.version.split()[0],
        "confluentSameBytes": raw,
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 100, sys.argv[5] if len(sys.argv) > 5 else None)
