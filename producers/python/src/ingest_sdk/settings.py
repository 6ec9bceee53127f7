"""The producer's settings: constructor arguments first, then the environment variables the TS
SDK and the worker read (lib/config.ts; the security names are issue 15's), then defaults.
Frozen once built; ``librdkafka_config()`` is the one place they become librdkafka keys."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
COMPRESSIONS = ("gzip", "none", "lz4", "zstd", "snappy")
WIRE_FORMATS = ("single-object", "confluent")

# Setting -> environment variable. Secrets are also read from the file named by <VAR>_FILE
# (Docker and Kubernetes secrets).
ENV = {
    "brokers": "KAFKA_BROKERS",
    "client_id": "KAFKA_CLIENT_ID",
    "topic_prefix": "KAFKA_TOPIC_PREFIX",
    "security_protocol": "KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "KAFKA_SASL_MECHANISM",
    "sasl_username": "KAFKA_SASL_USERNAME",
    "sasl_password": "KAFKA_SASL_PASSWORD",
    "ssl_ca_location": "KAFKA_SSL_CA_LOCATION",
    "ssl_certificate_location": "KAFKA_SSL_CERTIFICATE_LOCATION",
    "ssl_key_location": "KAFKA_SSL_KEY_LOCATION",
    "ssl_key_password": "KAFKA_SSL_KEY_PASSWORD",
    "wire_format": "INGEST_PRODUCER_WIRE_FORMAT",
    "schema_registry_url": "SCHEMA_REGISTRY_URL",
    "schema_registry_username": "SCHEMA_REGISTRY_USERNAME",
    "schema_registry_password": "SCHEMA_REGISTRY_PASSWORD",
    "schema_registry_token": "SCHEMA_REGISTRY_TOKEN",
    "schema_registry_ca_cert": "SCHEMA_REGISTRY_CA_CERT",
}
SECRETS = {"sasl_password", "ssl_key_password", "schema_registry_username", "schema_registry_password", "schema_registry_token"}

#: librdkafka before 2.6.1 puts the client nonce twice in SCRAM's client-final message
#: (confluentinc/librdkafka#4895); Kafka 4.x checks it and refuses the login as "invalid credentials".
SCRAM_MIN_LIBRDKAFKA = (0x020601FF, "2.6.1")


class KafkaClientVersionError(RuntimeError):
    """The installed confluent-kafka / librdkafka cannot do what the settings ask for."""


def check_librdkafka(settings: "ProducerSettings", libversion: tuple[str, int]) -> None:
    """Refuses SCRAM with a librdkafka older than 2.6.1 (``libversion``: confluent_kafka.libversion(),
    e.g. ("2.0.2", 0x020002ff)), before any connection, instead of the broker's "invalid credentials"."""
    name, number = libversion
    minimum, minimum_name = SCRAM_MIN_LIBRDKAFKA
    if settings.security_protocol.startswith("SASL_") and (settings.sasl_mechanism or "").startswith("SCRAM-") and number < minimum:
        raise KafkaClientVersionError(
            f"{settings.sasl_mechanism} needs librdkafka >= {minimum_name}, but confluent-kafka here runs librdkafka {name}: "
            f"librdkafka < {minimum_name} sends the SCRAM client-final message with the client nonce twice "
            f"(confluentinc/librdkafka#4895), which Kafka 4.x brokers refuse as invalid credentials. "
            f"Install confluent-kafka>={minimum_name} (its wheels bundle librdkafka >= {minimum_name}) or link librdkafka >= {minimum_name}, "
            f"or use another mechanism (PLAIN over SASL_SSL, or SSL client certificates)"
        )


@dataclass(frozen=True)
class ProducerSettings:
    #: Bootstrap brokers, host:port, comma-separated. Env KAFKA_BROKERS. Default 127.0.0.1:9092.
    brokers: str = "127.0.0.1:9092"
    #: Env KAFKA_CLIENT_ID. Default "ingest-producer-python".
    client_id: str = "ingest-producer-python"
    #: Topic = prefix + event type name; must match the workers'. Env KAFKA_TOPIC_PREFIX. Default "ingest.".
    topic_prefix: str = "ingest."
    #: How long events wait to be batched with others (librdkafka linger.ms). Default 5 ms, as the TS SDK.
    linger_ms: float = 5
    #: Most bytes per partition batch (librdkafka batch.size). Default 1,000,000, as the TS SDK's maxBatchBytes.
    max_batch_bytes: int = 1_000_000
    #: Calls block while this many KiB are queued and unacknowledged
    #: (queue.buffering.max.kbytes). Default 65536 (64 MiB), as the TS SDK's maxBufferedBytes.
    max_buffered_kbytes: int = 65536
    #: Default "gzip", as the TS SDK.
    compression: str = "gzip"
    #: An event not acknowledged this long after its call fails (message.timeout.ms). Default 120 s.
    delivery_timeout_ms: int = 120_000
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: str | None = field(default=None, repr=False)
    #: OAUTHBEARER token provider, librdkafka's oauth_cb: called with the sasl.oauthbearer.config
    #: string, returns (token, expiry in epoch seconds).
    oauth_token_provider: Callable[[str], tuple[str, float]] | None = field(default=None, repr=False)
    #: How events are framed: "single-object" (C3 01 | fingerprint | datum, no registry) or
    #: "confluent" (00 | schema id | datum, the schema registered under <topic>-value at the
    #: type's first emit; docs/schema-registry.md). Env INGEST_PRODUCER_WIRE_FORMAT.
    wire_format: str = "single-object"
    #: The registry's Confluent-compatible API, for wire_format "confluent". Env SCHEMA_REGISTRY_URL.
    schema_registry_url: str | None = None
    #: Basic auth. Env SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD (or their _FILE).
    schema_registry_username: str | None = field(default=None, repr=False)
    schema_registry_password: str | None = field(default=None, repr=False)
    #: Bearer token instead of basic auth. Env SCHEMA_REGISTRY_TOKEN (or _FILE).
    schema_registry_token: str | None = field(default=None, repr=False)
    #: PEM CA bundle for an https registry. Env SCHEMA_REGISTRY_CA_CERT.
    schema_registry_ca_cert: str | None = None
    #: Extra librdkafka properties, applied last (for what has no setting here).
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "ProducerSettings":
        """Settings from ``overrides`` (constructor arguments; None = not given), then ``env``
        (default os.environ), then the defaults. Raises ValueError naming a bad setting."""
        env = os.environ if env is None else env
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown producer settings: {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
        values: dict[str, Any] = {}
        for name, var in ENV.items():
            if name in SECRETS and env.get(f"{var}_FILE"):
                with open(env[f"{var}_FILE"], encoding="utf-8") as f:
                    values[name] = f.read().strip()
            elif env.get(var):
                values[name] = env[var]
        for name, value in overrides.items():
            if value is not None:
                values[name] = ",".join(value) if name == "brokers" and isinstance(value, (list, tuple)) else value
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.brokers:
            raise ValueError("brokers must not be empty")
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ValueError(f"security_protocol (KAFKA_SECURITY_PROTOCOL) must be one of {', '.join(SECURITY_PROTOCOLS)}, got {self.security_protocol!r}")
        uses_sasl = self.security_protocol.startswith("SASL_")
        if uses_sasl and self.sasl_mechanism not in SASL_MECHANISMS:
            raise ValueError(f"sasl_mechanism (KAFKA_SASL_MECHANISM) must be one of {', '.join(SASL_MECHANISMS)} with {self.security_protocol}, got {self.sasl_mechanism!r}")
        if uses_sasl and self.sasl_mechanism != "OAUTHBEARER" and not (self.sasl_username and self.sasl_password):
            raise ValueError(f"{self.sasl_mechanism} needs sasl_username and sasl_password (KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD)")
        if self.wire_format not in WIRE_FORMATS:
            raise ValueError(f"wire_format (INGEST_PRODUCER_WIRE_FORMAT) must be one of {', '.join(WIRE_FORMATS)}, got {self.wire_format!r}")
        if self.wire_format == "confluent" and not self.schema_registry_url:
            raise ValueError("wire_format 'confluent' needs a schema registry: schema_registry_url (SCHEMA_REGISTRY_URL)")
        if self.schema_registry_url is not None:
            if not self.schema_registry_url.startswith(("http://", "https://")):
                raise ValueError("schema_registry_url (SCHEMA_REGISTRY_URL) must be an http:// or https:// URL")
            if "@" in self.schema_registry_url.split("://", 1)[1].split("/", 1)[0]:
                raise ValueError("schema_registry_url (SCHEMA_REGISTRY_URL): put the credentials in SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD, not in the URL")
        if (self.schema_registry_username is None) != (self.schema_registry_password is None):
            raise ValueError("schema_registry_username and schema_registry_password go together (SCHEMA_REGISTRY_USERNAME, SCHEMA_REGISTRY_PASSWORD)")
        if self.schema_registry_token is not None and self.schema_registry_username is not None:
            raise ValueError("give either schema_registry_token (bearer) or schema_registry_username/password (basic auth), not both")
        if self.schema_registry_ca_cert is not None and not (self.schema_registry_url or "").startswith("https://"):
            raise ValueError("schema_registry_ca_cert (SCHEMA_REGISTRY_CA_CERT) needs an https:// schema_registry_url")
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {self.compression!r}")
        for name in ("linger_ms", "max_batch_bytes", "max_buffered_kbytes", "delivery_timeout_ms"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"{name} must be a non-negative number, got {v!r}")

    def librdkafka_config(self) -> dict[str, Any]:
        """The confluent-kafka (librdkafka) configuration of the producer."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.brokers,
            "client.id": self.client_id,
            # Idempotent with acks=all: a retried send is never written twice, and per-key
            # order holds (librdkafka keeps at most 5 requests in flight, ordered by sequence).
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": self.linger_ms,
            "batch.size": self.max_batch_bytes,
            "queue.buffering.max.kbytes": self.max_buffered_kbytes,
            "compression.type": self.compression,
            "message.timeout.ms": self.delivery_timeout_ms,
            # The Java client's partitioner (murmur2 of the key, positive, modulo the partition
            # count), which the TS SDK uses too (producers/typescript/src/kafka-transport.ts): a key maps to the
            # same partition from either SDK. librdkafka's default (consistent_random) is CRC32.
            "partitioner": "murmur2_random",
            "security.protocol": self.security_protocol,
        }
        if self.security_protocol.startswith("SASL_"):
            config["sasl.mechanism"] = self.sasl_mechanism
            if self.sasl_mechanism != "OAUTHBEARER":
                config["sasl.username"] = self.sasl_username
                config["sasl.password"] = self.sasl_password
            elif self.oauth_token_provider is not None:
                config["oauth_cb"] = self.oauth_token_provider
        for name, key in (
            ("ssl_ca_location", "ssl.ca.location"),
            ("ssl_certificate_location", "ssl.certificate.location"),
            ("ssl_key_location", "ssl.key.location"),
            ("ssl_key_password", "ssl.key.password"),
        ):
            value = getattr(self, name)
            if value is not None:
                config[key] = value
        config.update(self.extra)
        return config
