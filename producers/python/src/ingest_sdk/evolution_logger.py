"""The evolution-tracking SDK: the specification's ``ch_logger.log_…`` calls
(evolution-tables.md), with the TS EvolutionLogger's rules (producers/typescript/src/evolution-logger.ts)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from .event_producer import EventProducer
from .json_text import to_json_text
from .validation import EventValidationError, now_ms, to_epoch_ms

_FINAL_STATUSES = {"completed", "failed"}


class EvolutionLogger(EventProducer):
    """Each method validates its event(s) and returns once they are queued; a bad value raises
    EventValidationError naming the event type and field, and nothing is sent. Events of one run
    share the Kafka key ``run_id``, so they are stored in the order they were logged (which is
    what makes a run's later update win over its start). Keyword arguments as in the
    specification; dict fields (config, metrics, messages, details, metadata) are stored as JSON
    text, exactly as the TS SDK writes it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # task_name per run_id, remembered from log_evolution_run so log_generation can fill it.
        self._task_names: dict[str, str] = {}

    def log_evolution_run(
        self,
        run_id: str,
        task_name: str,
        config: Any,
        population_size: int,
        cluster_type: str,
        database_path: str,
        start_time: Any = None,
        status: str | None = None,
    ) -> None:
        """Start of a run: status "running" unless given, total_generations 0."""
        self.emit(
            "evolution_runs",
            [
                {
                    "run_id": run_id,
                    "task_name": task_name,
                    "start_time": _ms("start_time", now_ms() if start_time is None else start_time),
                    "config": _config_json(config),
                    "population_size": population_size,
                    "cluster_type": cluster_type,
                    "database_path": database_path,
                    "status": "running" if status is None else status,
                    "total_generations": 0,
                    "end_time": None,
                }
            ],
        )
        if isinstance(task_name, str):
            self._task_names[run_id] = task_name

    def update_evolution_run(self, run_id: str, status: str, total_generations: int, end_time: Any = None) -> None:
        """Status change of a run; only status, total_generations and end_time are written (the
        rest stays). end_time defaults to now when the status is "completed" or "failed"."""
        if end_time is None and status in _FINAL_STATUSES:
            end_time = now_ms()
        self.emit(
            "evolution_runs",
            [
                {
                    "run_id": run_id,
                    "status": status,
                    "total_generations": total_generations,
                    "end_time": None if end_time is None else _ms("end_time", end_time),
                    "start_time": None,
                    "task_name": None,
                    "config": None,
                    "population_size": None,
                    "cluster_type": None,
                    "database_path": None,
                }
            ],
        )

    def log_generation(self, **fields: Any) -> None:
        """Statistics of one generation; task_name defaults to the one logged for the run (or "")."""
        if fields.get("task_name") is None:
            fields["task_name"] = self._task_names.get(fields.get("run_id"), "")  # type: ignore[arg-type]
        self.emit("generations", [fields])

    def log_individual(self, **fields: Any) -> None:
        self.emit("individuals", [fields])

    def log_pareto_front(self, run_id: str, generation: int, members: Iterable[Mapping[str, Any]], timestamp: Any = None) -> None:
        """One row per front member (individual_id, fitness_score, combined_score, metrics), all
        with the same run, generation and timestamp."""
        if isinstance(members, (str, bytes, Mapping)) or not hasattr(members, "__iter__"):
            raise EventValidationError("pareto_fronts", "members", "expected an array of front members")
        ts = now_ms() if timestamp is None else timestamp
        rows = []
        for m in members:
            if not isinstance(m, Mapping):
                rows.append(m)  # refused by validation, with its index
                continue
            rows.append({**m, "run_id": run_id, "generation": generation, "timestamp": ts})
        self.emit("pareto_fronts", rows)

    def log_lineage(self, **fields: Any) -> None:
        self.emit("code_lineages", [fields])

    def log_llm_interaction(self, **fields: Any) -> None:
        self.emit("llm_logs", [fields])

    def log_agent_action(self, **fields: Any) -> None:
        self.emit("agent_actions", [fields])


def _ms(field: str, value: Any) -> int:
    ms = to_epoch_ms(value)
    if isinstance(ms, str):
        raise EventValidationError("evolution_runs", field, ms)
    return ms


def _config_json(value: Any) -> str | None:
    """config is not a JSON field of the schema (an absent config must stay null, not "null"),
    so it is serialised here, as the TS EvolutionLogger does."""
    if value is None:
        return None
    if isinstance(value, str):
        import json

        try:
            json.loads(value)
        except ValueError:
            raise EventValidationError("evolution_runs", "config", "expected JSON text or an object, got a string that is not JSON") from None
        return value
    try:
        return to_json_text(_plain(value))
    except (TypeError, ValueError) as err:
        raise EventValidationError("evolution_runs", "config", f"cannot be serialised to JSON: {err}") from None


def _plain(value: Any) -> Any:
    """A Hydra/OmegaConf DictConfig (the spec's ``cfg``) as plain containers, when it is one."""
    if type(value).__name__ in ("DictConfig", "ListConfig"):
        from omegaconf import OmegaConf  # type: ignore[import-not-found]

        return OmegaConf.to_container(value, resolve=True)
    return value
