"""The SDK on the secured broker of ``scripts/kafka.sh start-secure``, the cases of
test/integration/kafka-security.test.ts: every mechanism delivers events as the least-privilege
principals (producer writes ingest.*, worker reads them in a group ingest-*), a wrong password, an
untrusted CA and a plaintext client on the TLS port are refused with an error naming the brokers
and the cause, ACLs refuse what is not granted, and no secret shows up in any error.

Also the start-up check: SCRAM with librdkafka < 2.6.1 (whose client-final message carries the
client nonce twice, confluentinc/librdkafka#4895; Kafka 4.x refuses it as invalid credentials)
is refused when the producer is created. Unit tests inject the version; the integration test
runs Debian's librdkafka.

The integration tests need a librdkafka >= 2.6.1 (SCRAM): run-tests.sh builds one
(scripts/librdkafka.sh) and runs pytest with it on LD_LIBRARY_PATH. The secured broker is
started (or reused when it already answers) on KAFKA_SECURE_PORT (default KAFKA_PORT+2, as the
TS tests), with the certificates and passwords of .cache/kafka/secure-PORT/certs."""

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import REPO, decode
from ingest_sdk import DeliveryError, EventProducer, IngestProducer, ProducerSettings
from ingest_sdk.settings import KafkaClientVersionError, check_librdkafka

OLD = ("2.0.2", 0x020002FF)  # Debian 12's librdkafka
SCRAM = ("SCRAM-SHA-256", "SCRAM-SHA-512")


def cost_events(n, start=0):
    return [
        {"customer_id": "123e4567-e89b-12d3-a456-426614174000", "cloud_provider": "aws", "service_name": "ec2", "instance_id": f"i-{start + i}",
         "instance_type": "m5.large", "region": "us-east-1", "cost_per_hour": 0.192, "utilization_percent": 50.0, "is_spot": 0, "is_reserved": 0}
        for i in range(n)
    ]


# --- the start-up check (unit) ------------------------------------------------------------------


def scram_settings(mechanism, password="not-a-real-secret-42"):
    return ProducerSettings.from_env({}, brokers="127.0.0.1:1", security_protocol="SASL_SSL", sasl_mechanism=mechanism, sasl_username="producer", sasl_password=password)


@pytest.mark.parametrize("mechanism", SCRAM)
@pytest.mark.parametrize("version", [OLD, ("2.6.0", 0x020600FF), ("2.6.1-RC1", 0x02060101)])
def test_scram_with_librdkafka_before_2_6_1_is_refused_naming_the_bug(mechanism, version):
    with pytest.raises(KafkaClientVersionError) as info:
        check_librdkafka(scram_settings(mechanism), version)
    message = str(info.value)
    assert f"{mechanism} needs librdkafka >= 2.6.1, but confluent-kafka here runs librdkafka {version[0]}" in message
    assert "client nonce twice" in message and "confluentinc/librdkafka#4895" in message
    assert "confluent-kafka>=2.6.1" in message
    assert "not-a-real-secret-42" not in message


@pytest.mark.parametrize("mechanism", SCRAM)
@pytest.mark.parametrize("version", [("2.6.1", 0x020601FF), ("2.15.1", 0x020F01FF), ("3.0.0", 0x030000FF)])
def test_scram_with_librdkafka_2_6_1_or_later_is_accepted(mechanism, version):
    check_librdkafka(scram_settings(mechanism), version)


@pytest.mark.parametrize(
    "settings",
    [
        dict(security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="u", sasl_password="p"),
        dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="u", sasl_password="p"),
        dict(security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER"),
        dict(security_protocol="SSL", ssl_ca_location="/ca.pem"),
        dict(security_protocol="PLAINTEXT"),
        # A SCRAM mechanism left over in the environment is not used without SASL: no refusal.
        dict(security_protocol="SSL", sasl_mechanism="SCRAM-SHA-256"),
    ],
)
def test_other_mechanisms_are_accepted_with_an_old_librdkafka(settings):
    check_librdkafka(ProducerSettings.from_env({}, **settings), OLD)


def test_the_producer_refuses_at_creation_before_any_connection(monkeypatch):
    import confluent_kafka

    created = []
    monkeypatch.setattr(confluent_kafka, "libversion", lambda: OLD)
    monkeypatch.setattr(confluent_kafka, "Producer", lambda config: created.append(config))
    with pytest.raises(KafkaClientVersionError, match=r"SCRAM-SHA-512 needs librdkafka >= 2\.6\.1.*runs librdkafka 2\.0\.2"):
        IngestProducer(scram_settings("SCRAM-SHA-512"))
    with pytest.raises(KafkaClientVersionError, match="SCRAM-SHA-256 needs librdkafka"):
        EventProducer(brokers="127.0.0.1:1", security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256", sasl_username="u", sasl_password="p")
    assert created == []
    # The same version with PLAIN creates the client.
    IngestProducer(brokers="127.0.0.1:1", security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="u", sasl_password="p")
    assert len(created) == 1 and created[0]["sasl.mechanism"] == "PLAIN"


# --- on the secured broker (integration) --------------------------------------------------------

SECURE_PORT = int(os.environ.get("KAFKA_SECURE_PORT") or int(os.environ.get("KAFKA_PORT") or 9092) + 2)
CERTS = Path(os.environ.get("KAFKA_CACHE_DIR") or REPO / ".cache" / "kafka") / f"secure-{SECURE_PORT}" / "certs"
SASL_SSL = f"127.0.0.1:{SECURE_PORT}"
SSL = f"127.0.0.1:{SECURE_PORT + 1}"


class Passwords(dict):
    """The principals' passwords; never shown (pytest prints a test's fixtures when it fails)."""

    def __repr__(self):
        return f"<passwords of {', '.join(self)}: hidden>"


@pytest.fixture(scope="session")
def secure_broker():
    """Starts the secured broker (scripts/kafka.sh start-secure reuses one that already answers);
    the passwords of its principals."""
    import confluent_kafka

    name, number = confluent_kafka.libversion()
    assert number >= 0x020601FF, (
        f"these tests need librdkafka >= 2.6.1 (SCRAM), confluent_kafka runs {name}: "
        "run them with producers/python/run-tests.sh, which builds one (scripts/librdkafka.sh)"
    )
    started = subprocess.run(["bash", str(REPO / "scripts" / "kafka.sh"), "start-secure"], env={**os.environ, "KAFKA_SECURE_PORT": str(SECURE_PORT)},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert started.returncode == 0, started.stdout
    env = dict(line.split("=", 1) for line in (CERTS / "users.env").read_text().split("\n") if line)
    return Passwords(store=env["STORE_PASSWORD"], key=env["KEY_PASSWORD"], admin=env["ADMIN_PASSWORD"], producer=env["PRODUCER_PASSWORD"], worker=env["WORKER_PASSWORD"])


def no_secret_in(text, pw):
    """Asserted as `assert no_secret_in(...)`: pytest's report then shows no secret either."""
    return not any(secret in text for secret in (WRONG_PASSWORD, *pw.values()))


def cert(name):
    return str(CERTS / name)


def unsecured_jws(sub, lifetime_s=3600):
    """An unsigned JWS (alg "none"), what the broker's OAuthBearerUnsecuredValidatorCallbackHandler accepts."""
    b64 = lambda o: base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()  # noqa: E731
    now = time.time()
    return f"{b64({'alg': 'none'})}.{b64({'sub': sub, 'iat': now, 'exp': now + lifetime_s})}.", now + lifetime_s


# A mechanism: (principal, passwords, topic prefix) -> ProducerSettings. Settings objects, never
# dicts, go around: their repr hides the secrets, and pytest prints a failing frame's arguments.
def sasl(mechanism, password=None):
    def as_(user, pw, prefix="ingest."):
        return ProducerSettings.from_env({}, brokers=SASL_SSL, topic_prefix=prefix, security_protocol="SASL_SSL", sasl_mechanism=mechanism,
                                         sasl_username=user, sasl_password=password or pw[user], ssl_ca_location=cert("ca.pem"))
    return as_


def mtls(user, pw, prefix="ingest."):
    return ProducerSettings.from_env({}, brokers=SSL, topic_prefix=prefix, security_protocol="SSL", ssl_ca_location=cert("ca.pem"),
                                     ssl_certificate_location=cert(f"{user}.pem"), ssl_key_location=cert(f"{user}-key.pem"), ssl_key_password=pw["key"])


def oauth(user, pw, prefix="ingest."):
    return ProducerSettings.from_env({}, brokers=SASL_SSL, topic_prefix=prefix, security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER",
                                     ssl_ca_location=cert("ca.pem"), oauth_token_provider=lambda _config: unsecured_jws(user))


MECHANISMS = {
    "SASL_SSL SCRAM-SHA-256": sasl("SCRAM-SHA-256"),
    "SASL_SSL SCRAM-SHA-512": sasl("SCRAM-SHA-512"),
    "SASL_SSL PLAIN": sasl("PLAIN"),
    "SSL with client certificates (mTLS)": mtls,
    "SASL_SSL OAUTHBEARER (unsecured JWS from the token provider)": oauth,
}


def client_config(settings):
    """The connection part of the SDK's librdkafka configuration (for the admin and the consumer)."""
    c = settings.librdkafka_config()
    return {k: v for k, v in c.items() if k.startswith(("bootstrap.", "security.", "sasl.", "ssl.", "oauth_cb"))}


def create_topic(pw, topic):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(client_config(sasl("SCRAM-SHA-512")("admin", pw)))
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(30)


def consume(settings, group, topic, expected, timeout_s=60):
    """The records of ``topic`` from the start, exactly ``expected`` of them, read as ``settings``' principal."""
    from confluent_kafka import Consumer

    c = Consumer({**client_config(settings), "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out, errors = [], []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                errors.append(msg.error().str())
                continue
            out.append(decode("cost_metrics", msg.value()))
        end = time.monotonic() + 1.0  # a little longer: more than expected would be a duplicate
        while time.monotonic() < end:
            msg = c.poll(0.2)
            if msg is not None and not msg.error():
                out.append(decode("cost_metrics", msg.value()))
    finally:
        c.close()
    assert len(out) == expected, f"consumed {len(out)} of {expected}; errors: {errors[:3]}"
    return out


def unique(prefix="s"):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.mark.integration
@pytest.mark.parametrize("name", list(MECHANISMS))
def test_events_reach_the_topic_over_every_mechanism_as_least_privilege_principals(secure_broker, name):
    """300 events from the producer principal, acknowledged; the worker principal reads exactly
    those 300 in a group ingest-*, over the same mechanism."""
    as_ = MECHANISMS[name]
    prefix = f"ingest.{unique()}."
    create_topic(secure_broker, f"{prefix}cost_metrics")
    with IngestProducer(as_("producer", secure_broker, prefix)) as p:
        p.insert_cost_metrics(cost_events(300))
        p.flush(30)
        assert p.events_acknowledged == 300
    got = consume(as_("worker", secure_broker), f"ingest-{prefix.strip('.')}", f"{prefix}cost_metrics", 300)
    assert sorted(r["instance_id"] for r in got) == sorted(f"i-{i}" for i in range(300))


WRONG_PASSWORD = f"wrong-{uuid.uuid4().hex[:12]}"
REFUSALS = {
    # name: (settings, the error flush() raises at once; None: at its timeout)
    "a wrong password": (
        lambda pw, prefix: sasl("SCRAM-SHA-256", WRONG_PASSWORD)("producer", pw, prefix),
        r"^cannot connect to Kafka at 127\.0\.0\.1:\d+: sasl_ssl://127\.0\.0\.1:\d+/bootstrap: SASL authentication error: Authentication failed during authentication "
        r"due to invalid credentials with SASL mechanism SCRAM-SHA-256 .*: check the SASL user, password and mechanism .*; 1 event\(s\) still unacknowledged; brokers 127\.0\.0\.1:\d+$",
    ),
    "an untrusted CA": (
        lambda pw, prefix: replace(sasl("SCRAM-SHA-256")("producer", pw, prefix), ssl_ca_location=cert("rogue-ca.pem")),
        r"^cannot connect to Kafka at 127\.0\.0\.1:\d+: sasl_ssl://127\.0\.0\.1:\d+/bootstrap: SSL handshake failed: .*certificate verify failed.*"
        r": the broker's certificate does not chain to ssl_ca_location \(KAFKA_SSL_CA_LOCATION\); 1 event\(s\) still unacknowledged; brokers 127\.0\.0\.1:\d+$",
    ),
    # The broker closes the connection: librdkafka logs it and says only that the brokers are down
    # (as "1/1 brokers are down", or "0/1" when its count runs behind).
    "a plaintext client on the TLS port": (
        lambda pw, prefix: ProducerSettings.from_env({}, brokers=SASL_SSL, topic_prefix=prefix),
        r"^1 event\(s\) still unacknowledged at the flush timeout; brokers 127\.0\.0\.1:\d+; last client error: [01]/1 brokers are down$",
    ),
}


@pytest.mark.integration
@pytest.mark.parametrize("name", list(REFUSALS))
def test_misconfigurations_are_refused_naming_the_broker_and_the_cause(secure_broker, name):
    """flush() raises DeliveryError: at once (within 10 s) when the broker refuses the client,
    at the 8 s timeout for the plaintext client; the event stays unacknowledged; no secret in it."""
    import re

    settings, expected = REFUSALS[name]
    p = IngestProducer(settings(secure_broker, f"ingest.{unique()}."))
    p.insert_cost_metrics(cost_events(1))
    started = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        p.flush(8 if "plaintext" in name else 25)
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert re.search(expected, message, re.S), message
    assert elapsed < 10, f"flush raised after {elapsed:.1f} s"
    assert info.value.pending == 1 and info.value.failures == [] and p.events_acknowledged == 0
    assert no_secret_in(message + repr(info.value), secure_broker), "a password shows in the error"


@pytest.mark.integration
def test_acls_refuse_the_producer_outside_ingest_and_the_worker_writing(secure_broker):
    pw = secure_broker
    id_ = unique()
    create_topic(pw, f"secret.{id_}.cost_metrics")
    create_topic(pw, f"ingest.{id_}.cost_metrics")
    # The producer outside its prefix: each event fails, naming the topic and the refusal.
    p = IngestProducer(sasl("SCRAM-SHA-256")("producer", pw, f"secret.{id_}."))
    p.insert_cost_metrics(cost_events(2))
    with pytest.raises(DeliveryError) as info:
        p.flush(30)
    message = str(info.value)
    assert message.startswith(f"2 event(s) not delivered: 2 x secret.{id_}.cost_metrics: Broker: Topic authorization failed (TOPIC_AUTHORIZATION_FAILED); brokers "), message
    assert [f.topic for f in info.value.failures] == [f"secret.{id_}.cost_metrics"] * 2 and not any(f.retriable for f in info.value.failures)
    assert no_secret_in(message, pw), "a password shows in the error"
    # The worker may write nowhere, so it gets no idempotent producer id either (KIP-679): a
    # fatal error, raised by flush() at once.
    w = IngestProducer(sasl("SCRAM-SHA-512")("worker", pw, f"ingest.{id_}."))
    w.insert_cost_metrics(cost_events(1))
    started = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        w.flush(30)
    message = str(info.value)
    assert message.startswith("the producer stopped, refused by Kafka at 127.0.0.1:"), message
    assert "Failed to acquire idempotence PID from broker" in message and "Broker: Cluster authorization failed" in message, message
    # pending is librdkafka's queue length: the event, and after a fatal error its error event too.
    assert time.monotonic() - started < 10 and info.value.pending >= 1 and w.events_acknowledged == 0
    assert no_secret_in(message, pw), "a password shows in the error"


@pytest.mark.integration
def test_acls_refuse_the_producer_as_a_consumer(secure_broker):
    """The producer has no group ACL: its consumer is refused GROUP_AUTHORIZATION_FAILED."""
    from confluent_kafka import Consumer, KafkaError

    id_ = unique()
    create_topic(secure_broker, f"ingest.{id_}.cost_metrics")
    c = Consumer({**client_config(sasl("SCRAM-SHA-256")("producer", secure_broker)), "group.id": f"ingest-{id_}-p", "auto.offset.reset": "earliest"})
    c.subscribe([f"ingest.{id_}.cost_metrics"])
    errors = []
    deadline = time.monotonic() + 30
    try:
        while not errors and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is not None and msg.error():
                errors.append(msg.error())
    finally:
        c.close()
    assert errors and errors[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED, [e.str() for e in errors]


CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import confluent_kafka
from ingest_sdk import IngestProducer, ProducerSettings
from ingest_sdk.settings import KafkaClientVersionError
brokers, pwfile, ca = sys.argv[2:5]
settings = ProducerSettings.from_env({"KAFKA_SASL_PASSWORD_FILE": pwfile}, brokers=brokers, security_protocol="SASL_SSL",
                                     sasl_mechanism="SCRAM-SHA-256", sasl_username="producer", ssl_ca_location=ca)
out = {"libversion": confluent_kafka.libversion()}
try:
    IngestProducer(settings).close(1)
    out["sdk"] = "created"
except KafkaClientVersionError as e:
    out["sdk"] = str(e)
# The bare client, with the same configuration: what the check saves the user from.
errors = []
raw = confluent_kafka.Producer({**settings.librdkafka_config(), "error_cb": lambda e: errors.append(e.str())})
deadline = time.monotonic() + 20
while not errors and time.monotonic() < deadline:
    raw.poll(0.2)
out["raw"] = errors[:1]
print(json.dumps(out))
"""


@pytest.mark.integration
def test_debians_librdkafka_refuses_scram_at_creation_where_the_broker_would_say_invalid_credentials(secure_broker, tmp_path):
    """In a child without LD_LIBRARY_PATH, on the system's librdkafka: when older than 2.6.1, the
    SDK refuses SCRAM at creation, and the bare client shows why (the broker refuses its login)."""
    pwfile = tmp_path / "password"
    pwfile.write_text(secure_broker["producer"])  # the child reads it from a file, never from its command line
    pwfile.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    run = subprocess.run([sys.executable, "-c", CHILD, str(REPO / "producers" / "python" / "src"), SASL_SSL, str(pwfile), cert("ca.pem")],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert no_secret_in(run.stdout + run.stderr, secure_broker), "a password shows in the child's output"
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    if out["libversion"][1] >= 0x020601FF:
        pytest.skip(f"the system's librdkafka is {out['libversion'][0]} (>= 2.6.1): nothing to refuse")
    assert out["sdk"].startswith(f"SCRAM-SHA-256 needs librdkafka >= 2.6.1, but confluent-kafka here runs librdkafka {out['libversion'][0]}: "), out["sdk"]
    assert "confluentinc/librdkafka#4895" in out["sdk"]
    assert len(out["raw"]) == 1 and "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256" in out["raw"][0], out["raw"]
