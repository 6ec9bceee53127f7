"""Settings: constructor arguments over the environment (issue 15's names) over defaults, and
their librdkafka keys."""

import pytest

from ingest_sdk import ProducerSettings


def test_defaults_are_the_ts_sdks():
    c = ProducerSettings.from_env({}).librdkafka_config()
    assert c["bootstrap.servers"] == "127.0.0.1:9092"
    assert c["enable.idempotence"] is True and c["acks"] == "all"
    assert c["partitioner"] == "murmur2_random"
    assert c["compression.type"] == "gzip" and c["linger.ms"] == 5
    assert c["security.protocol"] == "PLAINTEXT"
    assert not any(k.startswith(("sasl.", "ssl.")) for k in c)


def test_environment_names_map_to_librdkafka():
    env = {
        "KAFKA_BROKERS": "b1:9093,b2:9093",
        "KAFKA_TOPIC_PREFIX": "prod.",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "producer",
        "KAFKA_SASL_PASSWORD": "s3cret",
        "KAFKA_SSL_CA_LOCATION": "/etc/ca.pem",
        "KAFKA_SSL_CERTIFICATE_LOCATION": "/etc/client.pem",
        "KAFKA_SSL_KEY_LOCATION": "/etc/client.key",
        "KAFKA_SSL_KEY_PASSWORD": "keypw",
    }
    s = ProducerSettings.from_env(env)
    assert s.topic_prefix == "prod."
    c = s.librdkafka_config()
    assert {k: c[k] for k in c if k.startswith(("sasl.", "ssl.", "security.", "bootstrap."))} == {
        "bootstrap.servers": "b1:9093,b2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "producer",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/ca.pem",
        "ssl.certificate.location": "/etc/client.pem",
        "ssl.key.location": "/etc/client.key",
        "ssl.key.password": "keypw",
    }
    assert "s3cret" not in repr(s) and "keypw" not in repr(s)


def test_constructor_arguments_win_over_the_environment():
    s = ProducerSettings.from_env({"KAFKA_BROKERS": "env:9092", "KAFKA_SECURITY_PROTOCOL": "SSL"}, brokers=["a:1", "b:2"], security_protocol="PLAINTEXT", sasl_username=None)
    assert s.brokers == "a:1,b:2" and s.security_protocol == "PLAINTEXT"


def test_secrets_from_files(tmp_path):
    (tmp_path / "pw").write_text("from-file\n")
    s = ProducerSettings.from_env({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "pw")})
    assert s.librdkafka_config()["sasl.password"] == "from-file"


def test_oauthbearer_token_provider_is_librdkafkas_oauth_cb():
    def provider(_config):
        return "token", 0.0

    c = ProducerSettings.from_env({}, security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER", oauth_token_provider=provider).librdkafka_config()
    assert c["sasl.mechanism"] == "OAUTHBEARER" and c["oauth_cb"] is provider
    assert "sasl.username" not in c


@pytest.mark.parametrize(
    "env, message",
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_PASSWORD"),
    ],
)
def test_bad_security_settings_are_refused(env, message):
    with pytest.raises(ValueError, match=message):
        ProducerSettings.from_env(env)


def test_unknown_and_bad_settings_are_refused():
    with pytest.raises(TypeError, match="lingerMs"):
        ProducerSettings.from_env({}, lingerMs=5)
    with pytest.raises(ValueError, match="linger_ms"):
        ProducerSettings.from_env({}, linger_ms=-1)
    with pytest.raises(ValueError, match="compression"):
        ProducerSettings.from_env({}, compression="brotli")
