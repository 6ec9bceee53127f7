"""The query side of get_clickhouse_client() without a database: a local HTTP server plays
ClickHouse's HTTP interface or a worker's query endpoint and records each request, so the tests
see the SQL, the bound parameters and the credentials exactly as sent, and what the client makes
of the answers. The real engine answers the same calls in test/integration/python-sdk-wheel.test.ts."""

import base64
import json
import math
import threading
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ingest_sdk import QueryError, QueryInputError
from ingest_sdk.queries import SQL, ClickHouseHttp, MetricsQueries, WorkerEndpoint, backend_from_env

CUSTOMER = "123e4567-e89b-12d3-a456-426614174000"
SERVICE = "456e7890-e89b-12d3-a456-426614174000"


class FakeServer:
    """Answers every request with ``self.reply(method, path, query, body, headers) -> (status, bytes)``."""

    def __init__(self, reply):
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode() if length else None
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                server.requests.append((self.command, parts.path, query, body, dict(self.headers)))
                status, data = reply(self.command, parts.path, query, body, self.headers)
                self.send_response(status)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def make(reply):
        s = FakeServer(reply)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


class Client(MetricsQueries):
    def __init__(self, backend):
        self._queries = backend


def rows(*items):
    return (200, "".join(json.dumps(r) + "\n" for r in items).encode())


def test_clickhouse_http_binds_every_value_as_a_query_parameter(serve):
    server = serve(lambda *a: rows({"hour": "2024-01-15 14:00:00", "total_cost": 0.192, "avg_utilization": 45.5, "max_utilization": 45.5, "samples": 1, "instances": 1}))
    client = Client(ClickHouseHttp(f"http://alice:s%40cret@{server.url[7:]}/metricsdb"))
    start = datetime(2024, 1, 15, 0, 0, tzinfo=timezone.utc)
    got = client.query_cost_hourly(customer_id=CUSTOMER, start_date=start, end_date="2024-01-16T00:00:00Z")
    assert got == [{"hour": datetime(2024, 1, 15, 14, tzinfo=timezone.utc), "total_cost": 0.192, "avg_utilization": 45.5, "max_utilization": 45.5, "samples": 1, "instances": 1}]
    method, path, query, body, headers = server.requests[0]
    assert method == "POST" and path == "/" and body == SQL["cost-hourly"]
    assert query == {
        "database": "metricsdb",
        "default_format": "JSONEachRow",
        "output_format_json_quote_64bit_integers": "0",
        "param_customerId": CUSTOMER,
        "param_startMs": "1705276800000",
        "param_endMs": "1705363200000",
    }
    assert CUSTOMER not in body and "{customerId:UUID}" in body
    assert base64.b64decode(headers["Authorization"].split()[1]).decode() == "alice:s@cret"
    assert "s@cret" not in repr(client._queries) and "cret" not in client._queries.where()


def test_clickhouse_http_shapes_of_the_four_calls(serve):
    answers = {
        "performance-p95": {"q": [200.5, 245.3, 250.0], "avg_latency_ms": 240.0, "max_latency_ms": 250.0, "total_requests": 3, "total_tokens": 1350, "avg_tp": 125.5},
        "resource-utilization": {"avg_gpu_utilization": 92.5, "max_gpu_utilization": 92.5, "avg_gpu_memory_used_mb": 38400, "max_gpu_memory_used_mb": 38400, "max_gpu_temperature": 72, "avg_cpu_utilization": 45.2, "max_cpu_utilization": 45.2, "avg_memory_used_gb": 120.5, "samples": 1},
        "quality-trends": {"hour": "2024-01-15 14:00:00", "avg_quality": 0.91, "min_quality": 0.91, "avg_relevance": 0.92, "avg_coherence": 0.95, "avg_factuality": 0.88, "max_toxicity": 0.02, "hallucinations": 0, "requests": 1},
    }
    by_sql = {sql: name for name, sql in SQL.items()}
    server = serve(lambda m, p, q, body, h: rows(answers[by_sql[body]]))
    client = Client(ClickHouseHttp(server.url))
    stats = client.query_performance_p95(customer_id=CUSTOMER, service_id=SERVICE, hours=24)
    assert stats == {"p50_latency_ms": 200.5, "p95_latency_ms": 245.3, "p99_latency_ms": 250.0, "avg_latency_ms": 240.0, "max_latency_ms": 250.0, "total_requests": 3, "total_tokens": 1350, "avg_throughput_tokens_per_sec": 125.5}
    assert f"P95 Latency: {stats['p95_latency_ms']:.2f}ms" == "P95 Latency: 245.30ms"
    util = client.query_resource_utilization(customer_id=CUSTOMER, instance_id="i-gpu-001", hours=24)
    assert util["avg_gpu_utilization"] == 92.5 and util["samples"] == 1
    trends = client.query_quality_trends(customer_id=CUSTOMER, service_id=SERVICE, hours=1.5)
    assert trends[0]["hour"] == datetime(2024, 1, 15, 14, tzinfo=timezone.utc) and trends[0]["hallucinations"] == 0
    params = [r[2] for r in server.requests]
    assert [p["param_seconds"] for p in params] == ["86400", "86400", "5400"]
    assert params[1]["param_instanceId"] == "i-gpu-001" and params[0]["param_serviceId"] == SERVICE
    assert all(p["database"] == "ingest" for p in params)


def test_empty_windows_give_nan_not_zero_nor_none(serve):
    server = serve(lambda m, p, q, body, h: rows({"q": [float("nan")] * 3, "avg_latency_ms": 0, "max_latency_ms": 0, "total_requests": 0, "total_tokens": 0, "avg_tp": 0} if "latency" in body else {"samples": 0, "avg_gpu_utilization": 0}))
    client = Client(ClickHouseHttp(server.url))
    stats = client.query_performance_p95(CUSTOMER, SERVICE, 24)
    assert math.isnan(stats["p95_latency_ms"]) and math.isnan(stats["p50_latency_ms"]) and stats["total_requests"] == 0
    assert f"P95 Latency: {stats['p95_latency_ms']:.2f}ms" == "P95 Latency: nanms"  # the spec's print still runs
    util = client.query_resource_utilization(CUSTOMER, "i-x", 24)
    assert math.isnan(util["avg_gpu_utilization"]) and math.isnan(util["max_gpu_utilization"]) and util["samples"] == 0


def test_clickhouse_error_is_raised_with_its_text_and_no_password(serve):
    server = serve(lambda *a: (404, b"Code: 60. DB::Exception: Table ingest.cost_metrics_hourly does not exist. (UNKNOWN_TABLE)"))
    client = Client(ClickHouseHttp(f"http://u:topsecret@{server.url[7:]}"))
    with pytest.raises(QueryError, match="UNKNOWN_TABLE") as info:
        client.query_cost_hourly(CUSTOMER, 0, 1)
    assert "topsecret" not in str(info.value) and server.url[7:] in str(info.value)
    dead = Client(ClickHouseHttp("http://u:topsecret@127.0.0.1:1"))
    with pytest.raises(QueryError, match="not reachable") as info:
        dead.query_quality_trends(CUSTOMER, SERVICE, 1)
    assert "topsecret" not in str(info.value)
    assert dead._queries.ping() is False


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c: c.query_cost_hourly("acme", 0, 1), "customer_id must be a UUID, got 'acme'"),
        (lambda c: c.query_cost_hourly(CUSTOMER, 10, 1), "end_date must not be before start_date"),
        (lambda c: c.query_cost_hourly(CUSTOMER, "yesterday", 1), "start_date must be"),
        (lambda c: c.query_cost_hourly(CUSTOMER, 0, None), "end_date must be"),
        (lambda c: c.query_performance_p95(CUSTOMER, "svc", 24), "service_id must be a UUID"),
        (lambda c: c.query_performance_p95(CUSTOMER, SERVICE, 0), "hours must be a finite number greater than 0"),
        (lambda c: c.query_quality_trends(CUSTOMER, SERVICE, float("nan")), "hours must be"),
        (lambda c: c.query_quality_trends(CUSTOMER, SERVICE, True), "hours must be"),
        (lambda c: c.query_resource_utilization(CUSTOMER, "", 24), "instance_id must be a non-empty string"),
    ],
)
def test_bad_arguments_are_refused_naming_them_before_any_request(serve, call, message):
    server = serve(lambda *a: rows())
    with pytest.raises(QueryInputError, match=message.replace("(", r"\(")):
        call(Client(ClickHouseHttp(server.url)))
    assert server.requests == []


def test_worker_endpoint_runs_the_named_helpers_with_parameters(serve):
    def reply(method, path, query, body, headers):
        if path == "/query":
            return 200, json.dumps({"clickhouse": "embedded chDB", "helpers": {"cost-hourly": {}}}).encode()
        result = [{"hour": "2024-01-15 14:00:00", "total_cost": 0.192}] if path.endswith("cost-hourly") else {"p95_latency_ms": 245.3, "total_requests": 1}
        return 200, json.dumps({"helper": path, "clickhouse": "x", "result": result}).encode()

    server = serve(reply)
    client = Client(WorkerEndpoint(server.url + "/"))
    assert client._queries.ping() is True
    got = client.query_cost_hourly(CUSTOMER, datetime(2024, 1, 15, tzinfo=timezone.utc), datetime(2024, 1, 16, tzinfo=timezone.utc))
    assert got == [{"hour": datetime(2024, 1, 15, 14, tzinfo=timezone.utc), "total_cost": 0.192}]
    assert client.query_performance_p95(CUSTOMER, SERVICE, hours=24) == {"p95_latency_ms": 245.3, "total_requests": 1}
    (_, p0, _, _, _), (m1, p1, q1, _, _), (_, p2, q2, _, _) = server.requests
    assert p0 == "/query" and m1 == "GET" and p1 == "/query/cost-hourly"
    assert q1 == {"customer-id": CUSTOMER, "start": "2024-01-15T00:00:00.000Z", "end": "2024-01-16T00:00:00.000Z"}
    assert p2 == "/query/performance-p95" and q2 == {"customer-id": CUSTOMER, "service-id": SERVICE, "hours": "24.0"}


def test_worker_errors_are_named(serve):
    server = serve(lambda *a: (400, b'{"error":"hours must be a finite number"}'))
    client = Client(WorkerEndpoint(server.url))
    with pytest.raises(QueryError, match="HTTP 400: hours must be a finite number"):
        client.query_quality_trends(CUSTOMER, SERVICE, 1)
    assert client._queries.ping() is False
    with pytest.raises(QueryError, match="not reachable.*QUERY_WORKER_URL or CLICKHOUSE_URL"):
        Client(WorkerEndpoint("http://127.0.0.1:1")).query_quality_trends(CUSTOMER, SERVICE, 1)


def test_worker_token_is_sent_as_bearer_and_kept_out_of_errors(serve, tmp_path):
    token = "a-query-token-of-32-characters-x"

    def reply(method, path, query, body, headers):
        if headers.get("Authorization") != f"Bearer {token}":
            return 401, b'{"error":"the query endpoint needs Authorization: Bearer <QUERY_TOKEN>"}'
        return 200, json.dumps({"helper": path, "clickhouse": "x", "result": {"p95_latency_ms": 1.0}}).encode()

    server = serve(reply)
    secret = tmp_path / "token"
    secret.write_text(token + "\n")
    client = Client(backend_from_env({"QUERY_WORKER_URL": server.url, "QUERY_TOKEN_FILE": str(secret)}))
    assert client.query_performance_p95(CUSTOMER, SERVICE, hours=1) == {"p95_latency_ms": 1.0}
    assert server.requests[-1][4]["Authorization"] == f"Bearer {token}"
    assert token not in repr(client._queries)
    with pytest.raises(QueryError, match="HTTP 401.*set QUERY_TOKEN") as info:
        Client(backend_from_env({"QUERY_WORKER_URL": server.url})).query_performance_p95(CUSTOMER, SERVICE, hours=1)
    wrong = "wrong-token-value-1234"
    with pytest.raises(QueryError, match="QUERY_TOKEN is not the worker's token") as info:
        Client(backend_from_env({"QUERY_WORKER_URL": server.url, "QUERY_TOKEN": wrong})).query_performance_p95(CUSTOMER, SERVICE, hours=1)
    assert wrong not in str(info.value)


def test_backend_from_env_order_and_bad_settings(tmp_path):
    secret = tmp_path / "url"
    secret.write_text("https://bob:pw@ch.example:8443/analytics\n")
    b = backend_from_env({"CLICKHOUSE_URL_FILE": str(secret), "QUERY_WORKER_URL": "http://w:1"})
    assert isinstance(b, ClickHouseHttp) and b.database == "analytics" and b.user == "bob" and b.password == "pw"
    b = backend_from_env({"CLICKHOUSE_URL": "http://h:8123", "CLICKHOUSE_DATABASE": "db2", "CLICKHOUSE_USER": "u", "CLICKHOUSE_PASSWORD": "p"})
    assert (b.database, b.user, b.password) == ("db2", "u", "p")
    assert backend_from_env({"QUERY_WORKER_URL": "http://w:7000"}).url == "http://w:7000"
    assert backend_from_env({"METRICS_PORT": "9999"}).url == "http://127.0.0.1:9999"
    assert backend_from_env({}).url == "http://127.0.0.1:9464"
    with pytest.raises(ValueError, match="METRICS_PORT must be a port"):
        backend_from_env({"METRICS_PORT": "0"})
    with pytest.raises(ValueError, match="CLICKHOUSE_URL must be an http") as info:
        backend_from_env({"CLICKHOUSE_URL": "clickhouse://u:hidden@h:9000"})
    assert "hidden" not in str(info.value)
