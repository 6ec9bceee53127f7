"""The Python SDK's throughput, for `npm run bench` (bench/python-producer-bench.ts runs it).

    KAFKA_BROKERS=... /usr/bin/python3 bench/python-producer.py POOL.json TOPIC_PREFIX TOTAL [EVENTS_PER_CALL]

Sends TOTAL cost events from the pool (cycled) with IngestProducer.insert_cost_metrics, then
flush(); prints one JSON line of figures. Also times validation + Avro encoding alone (no Kafka)
over the same events, which shows what limits the SDK: one Python thread validates and encodes
every event before librdkafka (C, its own threads) batches, compresses and sends it.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "producers" / "python" / "src"))

from ingest_sdk import EVENT_TYPES, IngestProducer, to_event_record  # noqa: E402
from ingest_sdk.event_types import SingleObjectEncoder  # noqa: E402
from ingest_sdk.wire_format import avro_backend  # noqa: E402


def main(pool_path: str, prefix: str, total: int, per_call: int) -> None:
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
    print(json.dumps({
        "eventType": "cost_metrics",
        "events": total,
        "calls": len(calls),
        "eventsPerCall": per_call,
        "seconds": round(seconds, 3),
        "eventsPerSec": round(total / seconds),
        "queueSeconds": round(queued - t0, 3),
        "cpuSeconds": round(time.process_time() - cpu0, 2),
        "validateEncodeOnlyEventsPerSec": round(encode_rate),
        "acknowledged": client.events_acknowledged,
        "avroBackend": avro_backend(),
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 100)
