"""The specification's example scripts in test/fixtures/spec-python are verbatim copies: each
block still hashes to the sha256 recorded when it was copied (an edit made to let the SDK pass
fails here), and with SPEC_DIR=<directory of the specification's documents> they still equal
the documents. Also: the import-line rewrite of run_spec_example.py changes nothing else."""

import importlib.util
import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("spec_examples_script", HERE.parent / "scripts" / "spec_examples.py")
examples = importlib.util.module_from_spec(spec)
spec.loader.exec_module(examples)

import run_spec_example  # noqa: E402


def test_copies_are_unedited_and_match_the_documents_when_given():
    spec_dir = os.environ.get("SPEC_DIR")
    assert examples.check(Path(spec_dir) if spec_dir else None) == []


def test_an_edited_copy_is_caught(tmp_path, monkeypatch):
    for name in examples.FILES:
        (tmp_path / name).write_text((examples.FIXTURES / name).read_text(encoding="utf-8"), encoding="utf-8")
    edited = tmp_path / "metrics_client.py"
    edited.write_text(edited.read_text(encoding="utf-8").replace("hours=24", "hours=48", 1), encoding="utf-8")
    monkeypatch.setattr(examples, "FIXTURES", tmp_path)
    problems = examples.check(None)
    assert len(problems) == 1 and "metrics_client.py: block 'Performance Metrics' was edited" in problems[0]


def test_only_the_import_lines_change():
    source = (examples.FIXTURES / "metrics_client.py").read_text(encoding="utf-8")
    rewritten = run_spec_example.changed_imports(source)
    diff = [(a, b) for a, b in zip(source.splitlines(), rewritten.splitlines()) if a != b]
    assert diff == [("from shared.clickhouse import get_clickhouse_client", "from ingest_sdk import get_clickhouse_client")]
    evolution = run_spec_example.changed_imports((examples.FIXTURES / "evolution_logging.py").read_text(encoding="utf-8"))
    assert "from ingest_sdk import ch_logger\n" in evolution and "genesis" not in evolution
    with pytest.raises(SystemExit, match="no replacement: from shared.postgres import db"):
        run_spec_example.changed_imports("from shared.postgres import db\n")
