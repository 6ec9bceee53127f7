"""The Python SDK's share of the fault suite's multi-broker scenario (chaos/run.ts spawns it).

    KAFKA_BROKERS=... /usr/bin/python3 chaos/python-load.py TOPIC_PREFIX TAG RATE TOTAL

Emits TOTAL valid cost events with IngestProducer.insert_cost_metrics, RATE events/s in 100 ms
calls, each with a unique instance_id TAG-<n>, then flushes. The SDK is idempotent with
acks=all, so an event retried across a broker failure is written once. Prints one JSON line
when done: {"acknowledged": n, "failures": [...]}. A line "progress n" on stderr every second.
"""

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "producers" / "python" / "src"))

from ingest_sdk import DeliveryError, IngestProducer  # noqa: E402

CUSTOMERS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(16)]


def event(tag: str, n: int) -> dict:
    return {
        "timestamp": datetime.now(timezone.utc),
        "customer_id": CUSTOMERS[n % len(CUSTOMERS)],
        "cloud_provider": "aws",
        "service_name": "ec2",
        "instance_id": f"{tag}-{n}",
        "instance_type": "m5.xlarge",
        "region": "us-east-1",
        "cost_per_hour": 0.1 + (n % 100) / 1000,
        "utilization_percent": float(n % 100),
        "is_spot": n % 2,
        "is_reserved": 0,
    }


def main(prefix: str, tag: str, rate: int, total: int) -> None:
    chunk = max(1, rate // 10)
    sent = 0
    failures: list[str] = []
    client = IngestProducer(topic_prefix=prefix)
    last = time.monotonic()
    while sent < total:
        t0 = time.monotonic()
        n = min(chunk, total - sent)
        client.insert_cost_metrics([event(tag, sent + i) for i in range(n)])
        sent += n
        if t0 - last >= 1:
            print(f"progress {sent}", file=sys.stderr, flush=True)
            last = t0
        time.sleep(max(0.0, 0.1 - (time.monotonic() - t0)))
    try:
        client.close()
    except DeliveryError as err:
        failures = [str(f) for f in err.failures]
    print(json.dumps({"queued": sent, "acknowledged": client.events_acknowledged, "failures": failures[:20], "failed": len(failures)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
