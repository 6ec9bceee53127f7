"""The SDK's calls without a broker: what each call queues (the records and Kafka keys), and
that a refused call queues nothing. The producer is real (librdkafka queues locally while no
broker is up); only ``_produce`` is observed, to read what was queued."""

from datetime import datetime, timezone

import pytest

from conftest import decode
from ingest_sdk import EventValidationError, EvolutionLogger, IngestProducer
from spec_examples import evolution_examples, metrics_examples

COST = {
    "timestamp": datetime(2024, 1, 15, 14, 0, tzinfo=timezone.utc),
    "customer_id": "123e4567-e89b-12d3-a456-426614174000",
    "cloud_provider": "aws", "service_name": "ec2", "instance_id": "i-1", "instance_type": "m5.xlarge",
    "region": "us-east-1", "cost_per_hour": 0.192, "utilization_percent": 45.5, "is_spot": 0, "is_reserved": 0,
}


class Recorder:
    def __init__(self, producer):
        self.sent = []
        original = producer._produce

        def record(type_name, topic, messages):
            self.sent.extend((type_name, topic, key, value) for key, value in messages)
            original(type_name, topic, messages)

        producer._produce = record

    def records(self):
        return [(topic, key, decode(type_name, value)) for type_name, topic, key, value in self.sent]


@pytest.fixture
def offline():
    """Producers pointed at a closed port: they queue, and nothing is flushed."""
    made = []

    def make(cls, **kw):
        p = cls(brokers="127.0.0.1:1", topic_prefix="t.", delivery_timeout_ms=2000, **kw)
        made.append(p)
        return p, Recorder(p)

    yield make
    for p in made:
        p._closed = True  # nothing to deliver: the broker does not exist
        p._producer.purge()


def test_insert_queues_validated_records_keyed_by_customer(offline):
    client, rec = offline(IngestProducer)
    client.insert_cost_metrics([COST, {**COST, "timestamp": 1705327201000, "customer_id": "00000000-0000-4000-8000-000000000001"}])
    (topic1, key1, r1), (topic2, key2, r2) = rec.records()
    assert topic1 == topic2 == "t.cost_metrics"
    assert key1 == COST["customer_id"] and key2 == "00000000-0000-4000-8000-000000000001"
    assert r1["timestamp"] == 1705327200000 and r2["timestamp"] == 1705327201000
    assert r1["cost_per_hour"] == 0.192 and r1["is_spot"] == 0


def test_a_bad_event_refuses_the_whole_call_and_queues_nothing(offline):
    client, rec = offline(IngestProducer)
    with pytest.raises(EventValidationError) as info:
        client.insert_cost_metrics([COST, COST, {**COST, "cost_per_hour": float("nan")}])
    assert str(info.value).startswith("cost_metrics[2].cost_per_hour: expected a finite number, got NaN")
    assert rec.sent == []


def test_a_dict_instead_of_a_list_is_refused(offline):
    client, rec = offline(IngestProducer)
    with pytest.raises(EventValidationError, match=r"cost_metrics\.\(events\)"):
        client.insert_cost_metrics(COST)
    assert rec.sent == []


def test_spec_examples_queue_one_event_per_call(offline):
    client, rec = offline(IngestProducer)
    metrics_examples(client)
    assert [t for t, _, _, _ in rec.sent] == ["cost_metrics", "performance_metrics", "resource_metrics", "quality_metrics"]
    logger, lrec = offline(EvolutionLogger)
    evolution_examples(logger, {"evolution": {"num_generations": 10}, "llm": {"model": "claude"}})
    assert [t for t, _, _, _ in lrec.sent] == ["evolution_runs", "generations", "individuals", "code_lineages", "llm_logs"]
    runs = lrec.records()
    assert runs[0][2]["config"] == '{"evolution":{"num_generations":10},"llm":{"model":"claude"}}'
    assert runs[2][2]["metrics"] == '{"accuracy":0.95,"size":1024}'
    assert runs[4][2]["messages"] == '[{"role":"user","content":"..."}]'
    # task_name of a generation comes from the run's start, as the TS logger does.
    assert runs[1][2]["task_name"] == "circle_packing"
    assert all(key == "run_12345" for _, key, _ in runs[:4])


def test_evolution_run_start_and_update(offline):
    logger, rec = offline(EvolutionLogger)
    logger.log_evolution_run(run_id="r1", task_name="t", config=None, population_size=4, cluster_type="local", database_path="x.db", start_time=1705327200000)
    logger.update_evolution_run("r1", "completed", 3)  # positional, as the spec's diagram calls it
    logger.update_evolution_run("r1", "running", 1)
    (_, _, start), (_, _, done), (_, _, running) = rec.records()
    assert start["status"] == "running" and start["total_generations"] == 0 and start["config"] is None and start["start_time"] == 1705327200000
    assert done["status"] == "completed" and done["total_generations"] == 3 and done["end_time"] > 1705327200000
    assert done["task_name"] is None and done["config"] is None and done["start_time"] is None
    assert running["end_time"] is None


def test_pareto_front_one_row_per_member_with_one_timestamp(offline):
    logger, rec = offline(EvolutionLogger)
    logger.log_pareto_front(run_id="r1", generation=2, timestamp=1705327200000, members=[
        {"individual_id": "a", "fitness_score": 0.9, "combined_score": 0.8, "metrics": {"acc": 0.9}},
        {"individual_id": "b", "fitness_score": 0.7, "combined_score": 0.85},
    ])
    rows = [r for _, _, r in rec.records()]
    assert [(r["individual_id"], r["generation"], r["timestamp"], r["metrics"]) for r in rows] == [("a", 2, 1705327200000, '{"acc":0.9}'), ("b", 2, 1705327200000, "{}")]
    with pytest.raises(EventValidationError, match=r"pareto_fronts\[1\]\.fitness_score"):
        logger.log_pareto_front(run_id="r1", generation=2, members=[{"individual_id": "a", "fitness_score": 1, "combined_score": 1}, {"individual_id": "b", "fitness_score": "x", "combined_score": 1}])
    assert len(rows) == 2 and len(rec.sent) == 2


def test_llm_and_agent_action_ids_are_filled_and_key_the_message(offline):
    logger, rec = offline(EvolutionLogger)
    logger.log_llm_interaction(model="m", messages=[], response="r", cost=0.1, execution_time=1.0)
    logger.log_agent_action(action_type="job_submitted", details={"job_id": 7}, run_id="r1")
    (_, key1, llm), (_, key2, action) = rec.records()
    assert key1 == llm["id"] and len(llm["id"]) == 36 and key2 == action["id"]
    assert action["details"] == '{"job_id":7}' and action["run_id"] == "r1" and action["metadata"] == "{}"


def test_unknown_keyword_names_the_field(offline):
    """Real signatures: an unknown keyword is Python's TypeError naming it; a required value given
    as None is refused naming the field; nothing is queued."""
    logger, rec = offline(EvolutionLogger)
    with pytest.raises(TypeError, match="'fitness'"):
        logger.log_individual(run_id="r", individual_id="i", generation=0, parent_id="", mutation_type="init", fitness=1.0, fitness_score=1.0, combined_score=1.0)
    with pytest.raises(TypeError, match="fitness_delta"):
        logger.log_lineage(run_id="r", child_id="c", parent_id="p", generation=1, mutation_type="mutate")
    with pytest.raises(EventValidationError, match=r"individuals\[0\]\.mutation_type: expected a string, got null"):
        logger.log_individual("r", "i", 0, None, None, 1.0, 1.0)
    assert rec.sent == []


def test_positional_calls_in_the_specification_order(offline):
    """The specification's parameter order: positionals land in the same fields as keywords;
    parent_id None is the initial population ("")."""
    logger, rec = offline(EvolutionLogger)
    logger.log_evolution_run("run_1", "circle_packing", {"a": 1}, 20, "local", "results/x.db")
    logger.log_generation("run_1", 5, 20, 0.95, 0.82, 3, 1.25)
    logger.log_individual("run_1", "ind_001", 5, None, "init", 0.95, 0.9, {"accuracy": 0.95}, True, 0.05)
    logger.log_lineage("run_1", "ind_001", "ind_parent", 5, "mutate", 0.05, "Optimized loop algorithm")
    logger.log_llm_interaction("claude", [{"role": "user", "content": "..."}], "...", 0.01, 2.5)
    logger.log_action("job_submitted", {"job_id": "j1"})
    logger.update_evolution_run("run_1", "completed", 10)
    recs = [r for _, _, r in rec.records()]
    run, gen, ind, lin, llm, act, upd = recs
    assert run["task_name"] == "circle_packing" and run["population_size"] == 20 and run["database_path"] == "results/x.db"
    assert (gen["generation"], gen["num_individuals"], gen["best_score"], gen["avg_score"], gen["pareto_size"], gen["total_cost"], gen["task_name"]) == (5, 20, 0.95, 0.82, 3, 1.25, "circle_packing")
    assert (ind["parent_id"], ind["mutation_type"], ind["combined_score"], ind["metrics"], ind["is_pareto"], ind["api_cost"], ind["embed_cost"]) == ("", "init", 0.9, '{"accuracy":0.95}', True, 0.05, 0.0)
    assert (lin["parent_id"], lin["fitness_delta"], lin["edit_summary"]) == ("ind_parent", 0.05, "Optimized loop algorithm")
    assert (llm["model"], llm["cost"], llm["execution_time"], llm["metadata"]) == ("claude", 0.01, 2.5, "{}")
    assert act["action_type"] == "job_submitted" and act["details"] == '{"job_id":"j1"}'
    assert upd["status"] == "completed" and upd["total_generations"] == 10


def test_closed_producer_refuses_calls(offline):
    client, _ = offline(IngestProducer)
    client._closed = True
    with pytest.raises(RuntimeError, match="closed"):
        client.insert_cost_metrics([COST])
