"""The read side of the specification's client (metrics-tables.md): ``query_cost_hourly``,
``query_performance_p95``, ``query_resource_utilization`` and ``query_quality_trends``.

Two ways to reach the data, chosen by the settings:

- ``CLICKHOUSE_URL`` set: ClickHouse's HTTP interface. The SQL below (the same statements as the
  TS helpers of sql/queries.ts) is sent as the request body, every value as a bound
  ``{name:Type}`` query parameter (``param_<name>=`` in the URL), never formatted into the SQL.
- otherwise: a running worker's read-only query endpoint (consumers/query-endpoint.ts) at
  ``QUERY_WORKER_URL``, else ``http://127.0.0.1:<METRICS_PORT, default 9464>``; it runs the
  same helpers with the values bound by the worker. (The embedded chDB engine belongs to the
  worker process, so this is how to read it while the worker runs.) A worker with
  ``QUERY_TOKEN`` set requires it as a bearer token: the same ``QUERY_TOKEN`` (or
  ``QUERY_TOKEN_FILE``) here is sent with every request, and never appears in an error.

Both return the shapes the specification prints: ``query_cost_hourly`` and
``query_quality_trends`` a list of dicts (one per hour, oldest first, ``hour`` a UTC datetime),
``query_performance_p95`` and ``query_resource_utilization`` one dict (its averages, maxima and
percentiles NaN when the window has no rows, counts 0). Arguments are checked first: a bad one raises QueryInputError naming it.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Mapping

from .validation import UUID_RE, to_epoch_ms

#: Hours accepted by the windowed helpers: up to ten years (as sql/queries.ts).
MAX_HOURS = 24 * 366 * 10
DEFAULT_METRICS_PORT = 9464


class QueryInputError(ValueError):
    """A bad argument of a query_… call, named; nothing was sent."""


class QueryError(RuntimeError):
    """The query side did not answer or refused the query: names where (the URL without
    credentials) and ClickHouse's or the worker's error."""


# ------------------------------------------------------------------ the SQL (sql/queries.ts)

_WINDOW = "hour >= toStartOfHour(now64(3, 'UTC') - toIntervalSecond({seconds:UInt32}))"

SQL = {
    "cost-hourly": """SELECT
        hour,
        sumMerge(total_cost) AS total_cost,
        avgMerge(avg_utilization) AS avg_utilization,
        maxMerge(max_utilization) AS max_utilization,
        countMerge(samples) AS samples,
        uniqMerge(instances) AS instances
     FROM cost_metrics_hourly
     WHERE customer_id = {customerId:UUID}
       AND hour >= toStartOfHour(fromUnixTimestamp64Milli({startMs:Int64}, 'UTC'))
       AND hour <= fromUnixTimestamp64Milli({endMs:Int64}, 'UTC')
     GROUP BY hour
     ORDER BY hour""",
    "performance-p95": f"""SELECT
        quantilesTDigestMerge(0.5, 0.95, 0.99)(latency_quantiles) AS q,
        avgMerge(avg_latency_ms) AS avg_latency_ms,
        maxMerge(max_latency_ms) AS max_latency_ms,
        countMerge(requests) AS total_requests,
        sumMerge(total_tokens) AS total_tokens,
        avgMerge(avg_throughput) AS avg_tp
     FROM performance_metrics_hourly
     WHERE customer_id = {{customerId:UUID}} AND service_id = {{serviceId:UUID}} AND {_WINDOW}""",
    "resource-utilization": f"""SELECT
        avgMerge(avg_gpu_utilization) AS avg_gpu_utilization,
        maxMerge(max_gpu_utilization) AS max_gpu_utilization,
        avgMerge(avg_gpu_memory_used_mb) AS avg_gpu_memory_used_mb,
        maxMerge(max_gpu_memory_used_mb) AS max_gpu_memory_used_mb,
        maxMerge(max_gpu_temperature) AS max_gpu_temperature,
        avgMerge(avg_cpu_utilization) AS avg_cpu_utilization,
        maxMerge(max_cpu_utilization) AS max_cpu_utilization,
        avgMerge(avg_memory_used_gb) AS avg_memory_used_gb,
        countMerge(samples) AS samples
     FROM resource_metrics_hourly
     WHERE customer_id = {{customerId:UUID}} AND instance_id = {{instanceId:String}} AND {_WINDOW}""",
    "quality-trends": f"""SELECT
        hour,
        avgMerge(avg_quality) AS avg_quality,
        minMerge(min_quality) AS min_quality,
        avgMerge(avg_relevance) AS avg_relevance,
        avgMerge(avg_coherence) AS avg_coherence,
        avgMerge(avg_factuality) AS avg_factuality,
        maxMerge(max_toxicity) AS max_toxicity,
        sumMerge(hallucinations) AS hallucinations,
        countMerge(requests) AS requests
     FROM quality_metrics_hourly
     WHERE customer_id = {{customerId:UUID}} AND service_id = {{serviceId:UUID}} AND {_WINDOW}
     GROUP BY hour
     ORDER BY hour""",
}

_RESOURCE_FIELDS = (
    "avg_gpu_utilization",
    "max_gpu_utilization",
    "avg_gpu_memory_used_mb",
    "max_gpu_memory_used_mb",
    "max_gpu_temperature",
    "avg_cpu_utilization",
    "max_cpu_utilization",
    "avg_memory_used_gb",
)


# ------------------------------------------------------------------ arguments


def _uuid(name: str, value: Any) -> str:
    if not isinstance(value, str) or not UUID_RE.match(value):
        raise QueryInputError(f"{name} must be a UUID, got {value!r}")
    return value


def _id(name: str, value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 512:
        raise QueryInputError(f"{name} must be a non-empty string of at most 512 characters, got {value!r}")
    return value


def _seconds(hours: Any) -> int:
    ok = isinstance(hours, (int, float)) and not isinstance(hours, bool) and math.isfinite(hours) and 0 < hours <= MAX_HOURS
    if not ok:
        raise QueryInputError(f"hours must be a finite number greater than 0 and at most {MAX_HOURS}, got {hours!r}")
    return max(1, round(hours * 3600))


def _ms(name: str, value: Any) -> int:
    if not isinstance(value, (datetime, date, str, int, float)) or isinstance(value, bool):
        raise QueryInputError(f"{name} must be a datetime, an ISO time or epoch milliseconds, got {value!r}")
    ms = to_epoch_ms(value)
    if isinstance(ms, str) or ms < 0:
        raise QueryInputError(f"{name} must be a datetime, an ISO time or epoch milliseconds at or after 1970, got {value!r}")
    return ms


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _hour(value: Any) -> Any:
    """ClickHouse DateTime('UTC') text ("2024-01-15 14:00:00") as an aware datetime."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace(" ", "T")[:19]).replace(tzinfo=timezone.utc)
        except ValueError:
            return value
    return value


def _redact(url: str) -> str:
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    return urllib.parse.urlunsplit((p.scheme, host, p.path, "", ""))


# ------------------------------------------------------------------ backends


@dataclass
class ClickHouseHttp:
    """ClickHouse's HTTP interface (CLICKHOUSE_URL, e.g. ``http://user:pass@host:8123`` or
    ``https://host:8443/db``). Credentials from the URL, or CLICKHOUSE_USER / CLICKHOUSE_PASSWORD
    (…_FILE); database CLICKHOUSE_DATABASE, else the URL's path, else "ingest"."""

    url: str
    database: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_cert: str | None = None
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        p = urllib.parse.urlsplit(self.url)
        if p.scheme not in ("http", "https") or not p.hostname:
            raise ValueError(f"CLICKHOUSE_URL must be an http:// or https:// URL with a host, got {_redact(self.url)!r}")
        if self.user is None and p.username:
            self.user = urllib.parse.unquote(p.username)
        if self.password is None and p.password:
            self.password = urllib.parse.unquote(p.password)
        if self.database is None:
            self.database = p.path.strip("/") or "ingest"
        port = f":{p.port}" if p.port else ""
        self._base = f"{p.scheme}://{p.hostname}{port}"

    def __repr__(self) -> str:
        return f"ClickHouseHttp({self._base}, database {self.database})"

    def where(self) -> str:
        return f"ClickHouse server {self._base}, database {self.database}"

    def _request(self, path: str, query: Mapping[str, str], body: bytes | None) -> bytes:
        url = f"{self._base}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
        if self.user is not None:
            token = base64.b64encode(f"{self.user}:{self.password or ''}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        context = ssl.create_default_context(cafile=self.ca_cert) if self._base.startswith("https") and self.ca_cert else None
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s, context=context) as res:
                return res.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace").strip()
            raise QueryError(f"{self.where()}: HTTP {err.code}: {detail[:2000]}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise QueryError(f"{self.where()}: not reachable: {reason}") from None

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Runs ``sql`` with ``params`` bound as ClickHouse query parameters; JSONEachRow rows."""
        query = {
            "database": self.database or "ingest",
            "default_format": "JSONEachRow",
            # Counts are UInt64: JSON numbers (exact below 2^53), not strings; as the TS helpers.
            "output_format_json_quote_64bit_integers": "0",
        }
        for name, value in params.items():
            query[f"param_{name}"] = str(value)
        text = self._request("/", query, sql.encode("utf-8")).decode("utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def ping(self) -> bool:
        try:
            return self._request("/ping", {}, None).strip() == b"Ok."
        except QueryError:
            return False

    # The four helpers, as sql/queries.ts computes them.

    def cost_hourly(self, customer_id: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        return self.rows(SQL["cost-hourly"], {"customerId": customer_id, "startMs": start_ms, "endMs": end_ms})

    def performance_p95(self, customer_id: str, service_id: str, seconds: int) -> dict[str, Any]:
        found = self.rows(SQL["performance-p95"], {"customerId": customer_id, "serviceId": service_id, "seconds": seconds})
        row = found[0] if found else None
        empty = row is None or not row["total_requests"]
        q = [None, None, None] if empty else list(row["q"]) + [None] * (3 - len(row["q"]))  # type: ignore[index]
        return {
            "p50_latency_ms": q[0],
            "p95_latency_ms": q[1],
            "p99_latency_ms": q[2],
            "avg_latency_ms": None if empty else row["avg_latency_ms"],  # type: ignore[index]
            "max_latency_ms": None if empty else row["max_latency_ms"],  # type: ignore[index]
            "total_requests": row["total_requests"] if row else 0,
            "total_tokens": row["total_tokens"] if row else 0,
            "avg_throughput_tokens_per_sec": None if empty else row["avg_tp"],  # type: ignore[index]
        }

    def resource_utilization(self, customer_id: str, instance_id: str, seconds: int) -> dict[str, Any]:
        found = self.rows(SQL["resource-utilization"], {"customerId": customer_id, "instanceId": instance_id, "seconds": seconds})
        if not found or not found[0]["samples"]:
            return {**{k: None for k in _RESOURCE_FIELDS}, "samples": 0}
        return found[0]

    def quality_trends(self, customer_id: str, service_id: str, seconds: int) -> list[dict[str, Any]]:
        return self.rows(SQL["quality-trends"], {"customerId": customer_id, "serviceId": service_id, "seconds": seconds})


@dataclass
class WorkerEndpoint:
    """A running worker's query endpoint (``GET /query/<helper>?<param>=…``)."""

    url: str
    timeout_s: float = 30.0
    #: The worker's QUERY_TOKEN, sent as ``Authorization: Bearer``; kept out of repr and errors.
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        p = urllib.parse.urlsplit(self.url)
        if p.scheme not in ("http", "https") or not p.hostname:
            raise ValueError(f"QUERY_WORKER_URL must be an http:// or https:// URL with a host, got {_redact(self.url)!r}")
        self.url = self.url.rstrip("/")

    def where(self) -> str:
        return f"worker query endpoint {_redact(self.url)}/query"

    def _get(self, path: str) -> Any:
        try:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            request = urllib.request.Request(f"{self.url}{path}", headers=headers)
            with urllib.request.urlopen(request, timeout=self.timeout_s) as res:
                return json.loads(res.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            try:
                detail = json.loads(err.read().decode("utf-8")).get("error", "")
            except ValueError:
                detail = ""
            hint = " (is QUERY_ENDPOINT false on that worker?)" if err.code == 404 and not detail else ""
            if err.code == 401:
                hint = " (set QUERY_TOKEN to the worker's token)" if not self.token else " (QUERY_TOKEN is not the worker's token)"
            raise QueryError(f"{self.where()}: HTTP {err.code}: {detail}{hint}") from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise QueryError(f"{self.where()}: not reachable: {reason} (start a worker, or set QUERY_WORKER_URL or CLICKHOUSE_URL)") from None

    def helper(self, name: str, params: Mapping[str, Any]) -> Any:
        body = self._get(f"/query/{name}?{urllib.parse.urlencode({k: str(v) for k, v in params.items()})}")
        return body["result"]

    def ping(self) -> bool:
        try:
            return isinstance(self._get("/query").get("helpers"), dict)
        except QueryError:
            return False

    def cost_hourly(self, customer_id: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        return self.helper("cost-hourly", {"customer-id": customer_id, "start": _iso(start_ms), "end": _iso(end_ms)})

    def performance_p95(self, customer_id: str, service_id: str, seconds: int) -> dict[str, Any]:
        return self.helper("performance-p95", {"customer-id": customer_id, "service-id": service_id, "hours": seconds / 3600})

    def resource_utilization(self, customer_id: str, instance_id: str, seconds: int) -> dict[str, Any]:
        return self.helper("resource-utilization", {"customer-id": customer_id, "instance-id": instance_id, "hours": seconds / 3600})

    def quality_trends(self, customer_id: str, service_id: str, seconds: int) -> list[dict[str, Any]]:
        return self.helper("quality-trends", {"customer-id": customer_id, "service-id": service_id, "hours": seconds / 3600})



def _secret(env: Mapping[str, str], name: str) -> str | None:
    if env.get(f"{name}_FILE"):
        with open(env[f"{name}_FILE"], encoding="utf-8") as f:
            return f.read().strip()
    return env.get(name) or None


def backend_from_env(
    env: Mapping[str, str] | None = None,
    *,
    clickhouse_url: str | None = None,
    worker_url: str | None = None,
    timeout_s: float = 30.0,
) -> ClickHouseHttp | WorkerEndpoint:
    """The query side: ``clickhouse_url`` / CLICKHOUSE_URL (…_FILE) first, else ``worker_url`` /
    QUERY_WORKER_URL, else the worker at http://127.0.0.1:<METRICS_PORT> (default 9464), with
    QUERY_TOKEN (…_FILE) as its bearer token when set."""
    env = os.environ if env is None else env
    url = clickhouse_url or _secret(env, "CLICKHOUSE_URL")
    if url:
        return ClickHouseHttp(
            url,
            database=env.get("CLICKHOUSE_DATABASE") or None,
            user=env.get("CLICKHOUSE_USER") or None,
            password=_secret(env, "CLICKHOUSE_PASSWORD"),
            ca_cert=env.get("CLICKHOUSE_CA_CERT") or None,
            timeout_s=timeout_s,
        )
    worker = worker_url or env.get("QUERY_WORKER_URL")
    if not worker:
        port = env.get("METRICS_PORT") or str(DEFAULT_METRICS_PORT)
        if not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
            raise ValueError(f"METRICS_PORT must be a port from 1 to 65535 to find the worker's query endpoint, got {port!r} (or set QUERY_WORKER_URL)")
        worker = f"http://127.0.0.1:{port}"
    return WorkerEndpoint(worker, timeout_s=timeout_s, token=_secret(env, "QUERY_TOKEN"))


def _nan_for_none(row: Mapping[str, Any]) -> dict[str, Any]:
    """A statistic of an empty window (null from the worker and the helpers) as NaN."""
    return {k: math.nan if v is None else v for k, v in row.items()}


class MetricsQueries:
    """The specification's four query calls over a backend; mixed into the metrics client."""

    _queries: ClickHouseHttp | WorkerEndpoint

    def query_cost_hourly(self, customer_id: str, start_date: datetime | date | str | int, end_date: datetime | date | str | int) -> list[dict[str, Any]]:
        """Hourly cost of one customer from ``start_date`` (its hour included) to ``end_date``:
        ``[{hour, total_cost, avg_utilization, max_utilization, samples, instances}]``, oldest
        hour first. A naive datetime is local time (as ``datetime.now()`` gives it)."""
        cid = _uuid("customer_id", customer_id)
        start, end = _ms("start_date", start_date), _ms("end_date", end_date)
        if end < start:
            raise QueryInputError("end_date must not be before start_date")
        return [{**r, "hour": _hour(r.get("hour"))} for r in self._queries.cost_hourly(cid, start, end)]

    def query_performance_p95(self, customer_id: str, service_id: str, hours: float = 24) -> dict[str, Any]:
        """Latency percentiles of a service over the last ``hours`` (whole hours, from the start
        of the hour ``hours`` ago): ``{p50_latency_ms, p95_latency_ms, p99_latency_ms,
        avg_latency_ms, max_latency_ms, total_requests, total_tokens,
        avg_throughput_tokens_per_sec}``; the latencies and throughput are NaN when there were
        no requests (as ClickHouse's own aggregates of nothing: the specification's
        ``f"{stats['p95_latency_ms']:.2f}"`` prints ``nan``, where None would raise)."""
        return _nan_for_none(self._queries.performance_p95(_uuid("customer_id", customer_id), _uuid("service_id", service_id), _seconds(hours)))

    def query_resource_utilization(self, customer_id: str, instance_id: str, hours: float = 24) -> dict[str, Any]:
        """GPU/CPU utilization of an instance over the last ``hours``: ``{avg_gpu_utilization,
        max_gpu_utilization, …, samples}``; NaN fields when there were no samples."""
        return _nan_for_none(self._queries.resource_utilization(_uuid("customer_id", customer_id), _id("instance_id", instance_id), _seconds(hours)))

    def query_quality_trends(self, customer_id: str, service_id: str, hours: float = 24) -> list[dict[str, Any]]:
        """Per-hour quality of a service over the last ``hours``: ``[{hour, avg_quality,
        min_quality, avg_relevance, avg_coherence, avg_factuality, max_toxicity, hallucinations,
        requests}]``, oldest hour first."""
        rows = self._queries.quality_trends(_uuid("customer_id", customer_id), _uuid("service_id", service_id), _seconds(hours))
        return [{**r, "hour": _hour(r.get("hour"))} for r in rows]
