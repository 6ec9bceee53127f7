"""Runs one of the specification's example scripts (test/fixtures/spec-python/*.py) against the
INSTALLED ingest_sdk, with only its import lines changed:

    from shared.clickhouse import get_clickhouse_client            -> from ingest_sdk import get_clickhouse_client
    from genesis.utils.clickhouse_logger import ch_logger          -> from ingest_sdk import ch_logger

    <venv>/bin/python run_spec_example.py <example.py> [--lifecycle]

``cfg`` (the evolution example's "Hydra config dict", which the example takes from its
surroundings) is defined before the code runs. The script is not closed or flushed: its events
leave at interpreter exit (the SDK's exit flush). Observation only, no change to the calls: the
return values of ``ping`` and the ``query_*`` calls are recorded and printed as the last line,
``RESULTS <json>``, for test/integration/python-sdk-wheel.test.ts to compare with the same SQL
run directly. ``--lifecycle`` then makes the calls the specification's lifecycle names but shows
no code for (``log_pareto_front``, an agent action, ``update_evolution_run(run_id, "completed",
gens)``), so all seven evolution tables get a row.
"""

import json
import sys
from datetime import date, datetime
from pathlib import Path

IMPORTS = {
    "from shared.clickhouse import get_clickhouse_client": "from ingest_sdk import get_clickhouse_client",
    "from genesis.utils.clickhouse_logger import ch_logger": "from ingest_sdk import ch_logger",
}


def changed_imports(source: str) -> str:
    lines = source.splitlines(keepends=True)
    out = []
    for line in lines:
        stripped = line.strip()
        if stripped in IMPORTS:
            out.append(line.replace(stripped, IMPORTS[stripped]))
        elif stripped.startswith(("from shared", "from genesis", "import shared", "import genesis")):
            raise SystemExit(f"run_spec_example: an import of the specification's modules with no replacement: {stripped}")
        else:
            out.append(line)
    # Only import lines differ.
    assert [a for a, b in zip(lines, out) if a != b] == [a for a in lines if a.strip() in IMPORTS]
    return "".join(out)


def plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def record_calls(recorded):
    from ingest_sdk import MetricsClient

    for name in ("ping", "query_cost_hourly", "query_performance_p95", "query_resource_utilization", "query_quality_trends"):
        original = getattr(MetricsClient, name)

        def wrapper(self, *args, __name=name, __original=original, **kwargs):
            result = __original(self, *args, **kwargs)
            recorded.append({"call": __name, "args": plain(list(args)), "kwargs": plain(kwargs), "result": plain(result)})
            return result

        setattr(MetricsClient, name, wrapper)


def lifecycle():
    from ingest_sdk import ch_logger

    ch_logger.log_pareto_front(
        "run_12345",
        5,
        [
            {"individual_id": "ind_001", "fitness_score": 0.95, "combined_score": 0.90, "metrics": {"accuracy": 0.95, "size": 1024}},
            {"individual_id": "ind_002", "fitness_score": 0.90, "combined_score": 0.88, "metrics": {"accuracy": 0.90, "size": 512}},
        ],
    )
    ch_logger.log_action("job_completed", {"job_id": "job_123", "generation": 5, "correct": True}, {"cluster": "local"}, run_id="run_12345")
    ch_logger.update_evolution_run("run_12345", "completed", 10)


def main(argv):
    example = Path(argv[1])
    import ingest_sdk

    # The installed wheel, not the repository's source tree.
    print(f"ingest_sdk {ingest_sdk.__version__} from {Path(ingest_sdk.__file__).parent}", file=sys.stderr)
    if "/src/ingest_sdk" in ingest_sdk.__file__:
        raise SystemExit(f"run_spec_example: ingest_sdk imported from a source tree ({ingest_sdk.__file__}), not an installed package")
    recorded = []
    record_calls(recorded)
    code = compile(changed_imports(example.read_text(encoding="utf-8")), str(example), "exec")
    exec(code, {"__name__": "__main__", "cfg": {"evolution": {"num_generations": 10, "pop_size": 20}, "llm": {"model": "claude-3-5-sonnet"}}})
    if "--lifecycle" in argv:
        lifecycle()
    sys.stdout.flush()
    print("RESULTS " + json.dumps(recorded))


if __name__ == "__main__":
    main(sys.argv)
