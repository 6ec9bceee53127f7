"""The specification's example calls, verbatim, for the tests to run against ingest_sdk.

Copied from the seed documents of this project's specification (the "Python Client" section of
metrics-tables.md, "Logging Evolution Data" and "Logging LLM Calls" of evolution-tables.md);
only the calls, with their arguments, unchanged. What the seed code imports differently is the
migration note in docs/python-sdk.md: ``client`` and ``ch_logger`` are ingest_sdk objects here.
"""

from datetime import datetime  # noqa: F401  (the examples use datetime.now())


def metrics_examples(client):
    """metrics-tables.md: the four ``client.insert_…_metrics([...])`` calls."""
    client.insert_cost_metrics([
        {
            'timestamp': datetime.now(),
            'customer_id': '123e4567-e89b-12d3-a456-426614174000',
            'cloud_provider': 'aws',
            'service_name': 'ec2',
            'instance_id': 'i-1234567',
            'instance_type': 'm5.xlarge',
            'region': 'us-east-1',
            'cost_per_hour': 0.192,
            'utilization_percent': 45.5,
            'is_spot': 0,
            'is_reserved': 0
        }
    ])

    client.insert_performance_metrics([
        {
            'timestamp': datetime.now(),
            'customer_id': '123e4567-e89b-12d3-a456-426614174000',
            'service_id': '456e7890-e89b-12d3-a456-426614174000',
            'service_type': 'vllm',
            'model_name': 'llama-2-70b',
            'request_id': '789e0123-e89b-12d3-a456-426614174000',
            'latency_ms': 245.3,
            'throughput_tokens_per_sec': 125.5,
            'gpu_utilization': 85.2,
            'kv_cache_utilization': 72.1,
            'batch_size': 8,
            'prompt_tokens': 150,
            'completion_tokens': 300,
            'total_tokens': 450
        }
    ])

    client.insert_resource_metrics([
        {
            'timestamp': datetime.now(),
            'customer_id': '123e4567-e89b-12d3-a456-426614174000',
            'instance_id': 'i-gpu-001',
            'instance_type': 'p4d.24xlarge',
            'gpu_index': 0,
            'gpu_utilization': 92.5,
            'gpu_memory_used_mb': 38400,
            'gpu_memory_total_mb': 40960,
            'gpu_temperature': 72.0,
            'cpu_utilization': 45.2,
            'memory_used_gb': 120.5,
            'memory_total_gb': 1152.0,
            'network_rx_mbps': 1250.0,
            'network_tx_mbps': 850.0
        }
    ])

    client.insert_quality_metrics([
        {
            'timestamp': datetime.now(),
            'customer_id': '123e4567-e89b-12d3-a456-426614174000',
            'service_id': '456e7890-e89b-12d3-a456-426614174000',
            'request_id': '789e0123-e89b-12d3-a456-426614174000',
            'model_name': 'gpt-4',
            'relevance_score': 0.92,
            'coherence_score': 0.95,
            'factuality_score': 0.88,
            'hallucination_detected': 0,
            'toxicity_score': 0.02,
            'overall_quality_score': 0.91,
            'prompt_hash': 'abc123def456',
            'latency_ms': 1250
        }
    ])


def evolution_examples(ch_logger, cfg):
    """evolution-tables.md: the ``ch_logger.log_…(...)`` calls (``cfg`` is the run's Hydra config)."""
    ch_logger.log_evolution_run(
        run_id="run_12345",
        task_name="circle_packing",
        config=cfg,  # Hydra config dict
        population_size=20,
        cluster_type="local",
        database_path="results/circle_packing.db",
    )

    ch_logger.log_generation(
        run_id="run_12345",
        generation=5,
        num_individuals=20,
        best_score=0.95,
        avg_score=0.82,
        pareto_size=3,
        total_cost=1.25,
    )

    ch_logger.log_individual(
        run_id="run_12345",
        individual_id="ind_001",
        generation=5,
        parent_id="ind_parent",
        mutation_type="mutate",
        fitness_score=0.95,
        combined_score=0.90,
        metrics={"accuracy": 0.95, "size": 1024},
        is_pareto=True,
        api_cost=0.05,
    )

    ch_logger.log_lineage(
        run_id="run_12345",
        child_id="ind_001",
        parent_id="ind_parent",
        generation=5,
        mutation_type="mutate",
        fitness_delta=0.05,
        edit_summary="Optimized loop algorithm",
    )

    ch_logger.log_llm_interaction(
        model="claude-3-5-sonnet-20241022",
        messages=[{"role": "user", "content": "..."}],
        response="...",
        cost=0.01,
        execution_time=2.5,
    )
