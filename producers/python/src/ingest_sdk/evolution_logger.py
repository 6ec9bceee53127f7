"""The evolution-tracking SDK: the specification's ``ch_logger.log_…`` calls
(evolution-tables.md), with the TS EvolutionLogger's rules (producers/typescript/src/evolution-logger.ts)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence, Union

from .event_producer import EventProducer
from .json_text import to_json_text
from .validation import EventValidationError, now_ms, to_epoch_ms

_FINAL_STATUSES = {"completed", "failed"}


Time = Union[datetime, date, int, float, str]
"""A timestamp: a datetime (naive = local time), a date, epoch milliseconds or an ISO 8601 string."""


def _given(**values: Any) -> dict[str, Any]:
    """The optional arguments that were given: None means "left out" (the schema's default or
    the auto value: now, a random id), never a null written to a non-null column."""
    return {k: v for k, v in values.items() if v is not None}


class EvolutionCalls:
    """The specification's ``ch_logger`` calls (evolution-tables.md), with its parameter names
    and order; they build events and hand them to ``emit``. EvolutionLogger sends them through
    its own Kafka producer; ``ingest_sdk.ch_logger`` through one made at first use."""

    def __init__(self) -> None:
        # task_name per run_id, remembered from log_evolution_run so log_generation can fill it.
        self._task_names: dict[str, str] = {}

    if TYPE_CHECKING:  # given by EventProducer, or by the default logger (defaults.py)

        def emit(self, type_: Any, events: Iterable[Any]) -> None: ...

    def log_evolution_run(
        self,
        run_id: str,
        task_name: str,
        config: Any,
        population_size: int,
        cluster_type: str,
        database_path: str,
        start_time: Time | None = None,
        status: str | None = None,
    ) -> None:
        """Start of a run (evolution_runs): status "running" unless given, total_generations 0,
        start_time now unless given. ``config`` (a dict, a Hydra DictConfig or JSON text) is
        stored as JSON text."""
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

    def update_evolution_run(self, run_id: str, status: str, total_generations: int, end_time: Time | None = None) -> None:
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

    def log_generation(
        self,
        run_id: str,
        generation: int,
        num_individuals: int,
        best_score: float,
        avg_score: float,
        pareto_size: int,
        total_cost: float,
        metadata: Mapping[str, Any] | str | None = None,
        *,
        timestamp: Time | None = None,
        task_name: str | None = None,
    ) -> None:
        """Statistics of one generation (generations). task_name defaults to the one logged for
        the run by log_evolution_run (or ""); timestamp to now; metadata to {}."""
        if task_name is None:
            task_name = self._task_names.get(run_id, "") if isinstance(run_id, str) else ""
        event = {
            "run_id": run_id,
            "generation": generation,
            "num_individuals": num_individuals,
            "best_score": best_score,
            "avg_score": avg_score,
            "pareto_size": pareto_size,
            "total_cost": total_cost,
            "task_name": task_name,
            **_given(metadata=metadata, timestamp=timestamp),
        }
        self.emit("generations", [event])

    def log_individual(
        self,
        run_id: str,
        individual_id: str,
        generation: int,
        parent_id: str | None,
        mutation_type: str,
        fitness_score: float,
        combined_score: float,
        metrics: Mapping[str, Any] | str | None = None,
        is_pareto: bool | None = None,
        api_cost: float | None = None,
        embed_cost: float | None = None,
        novelty_cost: float | None = None,
        code_hash: str | None = None,
        code_size: int | None = None,
        *,
        timestamp: Time | None = None,
    ) -> None:
        """One evaluated code variant (individuals). parent_id None or "" = initial population;
        left out: metrics {}, is_pareto False, costs 0, code_hash "", code_size 0, timestamp now."""
        event = {
            "run_id": run_id,
            "individual_id": individual_id,
            "generation": generation,
            "mutation_type": mutation_type,
            "fitness_score": fitness_score,
            "combined_score": combined_score,
            **_given(
                parent_id=parent_id,
                metrics=metrics,
                is_pareto=is_pareto,
                api_cost=api_cost,
                embed_cost=embed_cost,
                novelty_cost=novelty_cost,
                code_hash=code_hash,
                code_size=code_size,
                timestamp=timestamp,
            ),
        }
        self.emit("individuals", [event])

    def log_pareto_front(
        self,
        run_id: str,
        generation: int,
        members: Iterable[Mapping[str, Any]],
        timestamp: Time | None = None,
    ) -> None:
        """The Pareto frontier of a generation (pareto_fronts): one row per member (a dict of
        individual_id, fitness_score, combined_score and optionally metrics), all with the same
        run, generation and timestamp (default now)."""
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

    def log_lineage(
        self,
        run_id: str,
        child_id: str,
        parent_id: str | None,
        generation: int,
        mutation_type: str,
        fitness_delta: float,
        edit_summary: str | None = None,
        *,
        timestamp: Time | None = None,
    ) -> None:
        """A parent-child edge (code_lineages). parent_id None or "" = initial population;
        edit_summary defaults to "", timestamp to now."""
        event = {
            "run_id": run_id,
            "child_id": child_id,
            "generation": generation,
            "mutation_type": mutation_type,
            "fitness_delta": fitness_delta,
            **_given(parent_id=parent_id, edit_summary=edit_summary, timestamp=timestamp),
        }
        self.emit("code_lineages", [event])

    def log_llm_interaction(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]] | str,
        response: str,
        cost: float,
        execution_time: float,
        metadata: Mapping[str, Any] | str | None = None,
        *,
        run_id: str | None = None,
        id: str | None = None,
        timestamp: Time | None = None,
    ) -> None:
        """One LLM API call (llm_logs). messages and metadata are stored as JSON text; id
        defaults to a random UUID, timestamp to now, metadata to {}, run_id to null."""
        event = {
            "model": model,
            "messages": messages,
            "response": response,
            "cost": cost,
            "execution_time": execution_time,
            **_given(metadata=metadata, run_id=run_id, id=id, timestamp=timestamp),
        }
        self.emit("llm_logs", [event])

    def log_agent_action(
        self,
        action_type: str,
        details: Mapping[str, Any] | str | None = None,
        metadata: Mapping[str, Any] | str | None = None,
        *,
        run_id: str | None = None,
        id: str | None = None,
        timestamp: Time | None = None,
    ) -> None:
        """A system event (agent_actions): job_submitted, job_completed, …. details and metadata
        are stored as JSON text (default {}); id defaults to a random UUID, timestamp to now."""
        event = {"action_type": action_type, **_given(details=details, metadata=metadata, run_id=run_id, id=id, timestamp=timestamp)}
        self.emit("agent_actions", [event])

    #: The name of this call in the specification's upstream logger (agent_actions rows).
    log_action = log_agent_action


class EvolutionLogger(EvolutionCalls, EventProducer):
    """Each method validates its event(s) and returns once they are queued; a bad value raises
    EventValidationError naming the event type and field, and nothing is sent. Events of one run
    share the Kafka key ``run_id``, so they are stored in the order they were logged (which is
    what makes a run's later update win over its start). Parameters as in the specification;
    dict fields (config, metrics, messages, details, metadata) are stored as JSON text, exactly
    as the TS SDK writes it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        EventProducer.__init__(self, *args, **kwargs)
        EvolutionCalls.__init__(self)


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
