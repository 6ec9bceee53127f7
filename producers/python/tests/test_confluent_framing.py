"""The Confluent wire format's framing and the registry settings (no broker, no registry)."""

import json

import pytest

from ingest_sdk.confluent_framing import confluent_header, read_schema_id, registry_schema_text
from ingest_sdk.event_types import event_type
from ingest_sdk.settings import ProducerSettings


def test_header_is_magic_zero_and_the_big_endian_id():
    assert confluent_header(1) == b"\x00\x00\x00\x00\x01"
    assert confluent_header(0x01020304) == b"\x00\x01\x02\x03\x04"
    assert read_schema_id(confluent_header(4242) + b"datum") == 4242
    assert read_schema_id(b"\xc3\x01" + b"\x00" * 8) is None
    with pytest.raises(ValueError):
        confluent_header(-1)


def test_registry_schema_text_is_the_same_json_without_a_bare_quoted_pair_of_braces():
    schema = event_type("llm_logs").schema
    text = registry_schema_text(schema)
    assert '"{}"' not in text
    assert json.loads(text) == schema


def test_confluent_needs_a_registry_url():
    with pytest.raises(ValueError, match=r"wire_format 'confluent' needs a schema registry: schema_registry_url \(SCHEMA_REGISTRY_URL\)"):
        ProducerSettings.from_env({}, wire_format="confluent")
    with pytest.raises(ValueError, match="wire_format .* must be one of single-object, confluent"):
        ProducerSettings.from_env({"INGEST_PRODUCER_WIRE_FORMAT": "protobuf"})


def test_registry_settings_from_env_and_their_rules(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    s = ProducerSettings.from_env({"INGEST_PRODUCER_WIRE_FORMAT": "confluent", "SCHEMA_REGISTRY_URL": "https://registry:8081", "SCHEMA_REGISTRY_USERNAME": "key", "SCHEMA_REGISTRY_PASSWORD_FILE": str(secret)})
    assert (s.wire_format, s.schema_registry_url, s.schema_registry_username, s.schema_registry_password) == ("confluent", "https://registry:8081", "key", "s3cret")
    assert "s3cret" not in repr(s)
    with pytest.raises(ValueError, match="go together"):
        ProducerSettings.from_env({"SCHEMA_REGISTRY_URL": "http://r:8081", "SCHEMA_REGISTRY_USERNAME": "key"})
    with pytest.raises(ValueError, match="not both"):
        ProducerSettings.from_env({"SCHEMA_REGISTRY_URL": "http://r:8081", "SCHEMA_REGISTRY_USERNAME": "k", "SCHEMA_REGISTRY_PASSWORD": "p", "SCHEMA_REGISTRY_TOKEN": "t"})
    with pytest.raises(ValueError, match="needs an https://"):
        ProducerSettings.from_env({"SCHEMA_REGISTRY_URL": "http://r:8081", "SCHEMA_REGISTRY_CA_CERT": "/ca.pem"})
    with pytest.raises(ValueError, match="not in the URL"):
        ProducerSettings.from_env({"SCHEMA_REGISTRY_URL": "http://u:p@r:8081"})
