"""Runs a list of SDK calls from a JSON file through ingest_sdk, then closes (flushes) the
producers: the Python half of test/integration/python-sdk.test.ts, which makes the same calls
through the TS SDK and compares the rows the worker stored.

    KAFKA_BROKERS=... KAFKA_TOPIC_PREFIX=... /usr/bin/python3 produce_calls.py calls.json

A call is {"method": "insert_cost_metrics", "events": [...]} (IngestProducer) or
{"method": "log_individual", "kwargs": {...}} (EvolutionLogger). Prints {"acknowledged": N}.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ingest_sdk import EvolutionLogger, IngestProducer  # noqa: E402


def main(path: str) -> None:
    calls = json.loads(Path(path).read_text(encoding="utf-8"))
    with IngestProducer() as client, EvolutionLogger() as ch_logger:
        for call in calls:
            method = call["method"]
            if method.startswith("insert_"):
                getattr(client, method)(call["events"])
            else:
                getattr(ch_logger, method)(**call["kwargs"])
    print(json.dumps({"acknowledged": client.events_acknowledged + ch_logger.events_acknowledged}))


if __name__ == "__main__":
    main(sys.argv[1])
