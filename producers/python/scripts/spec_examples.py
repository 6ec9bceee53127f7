"""The specification's example Python code, kept verbatim in test/fixtures/spec-python/.

    /usr/bin/python3 producers/python/scripts/spec_examples.py sync <spec dir>   # rewrite the copies
    /usr/bin/python3 producers/python/scripts/spec_examples.py check [<spec dir>] # hashes (and the documents)

Each copied block follows a line ``# @spec <document> python <sha256 of the block> <heading>``;
the lines up to the next such line (or the end) are the block, byte for byte. The files are what
test/integration/python-sdk-wheel.test.ts runs with only the import lines changed
(``run_spec_example.py``); producers/python/tests/test_spec_fixtures.py checks the hashes, so an
edited copy (say, to make the SDK pass) fails without the specification at hand.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[3] / "test" / "fixtures" / "spec-python"
MARKER = re.compile(r"^# @spec (\S+) python ([0-9a-f]{64}) (.+)$")

#: file -> (document, headings of its blocks, in document order)
FILES = {
    "metrics_client.py": ("metrics-tables.md", ["Python Client", "Performance Metrics", "Resource Metrics", "Quality Metrics"]),
    "metrics_connection_check.py": ("metrics-tables.md", ["Connection Issues"]),
    "evolution_logging.py": ("evolution-tables.md", ["Logging Evolution Data", "Logging LLM Calls (already integrated)"]),
}
HEADER = '''# The specification's example code, verbatim (see producers/python/scripts/spec_examples.py).
# Source: {doc}, the ```python blocks under the headings named below, in document order.
# Run by test/integration/python-sdk-wheel.test.ts with only its import lines changed.
'''


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def document_blocks(spec_dir: Path, doc: str) -> dict[str, str]:
    text = (spec_dir / doc).read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for m in re.finditer(r"```python\n(.*?)```", text, re.S):
        heading = [h.group(1) for h in re.finditer(r"^#{2,4} (.+)$", text[: m.start()], re.M)][-1]
        out[heading] = m.group(1)
    return out


def fixture_blocks(path: Path) -> list[tuple[str, str, str, str]]:
    """[(document, sha256, heading, block)] of a fixture file."""
    blocks: list[tuple[str, str, str, str]] = []
    current: list[str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        m = MARKER.match(line.rstrip("\n"))
        if m:
            current = []
            blocks.append((m.group(1), m.group(2), m.group(3), ""))
            continue
        if current is not None:
            doc, h, heading, block = blocks[-1]
            blocks[-1] = (doc, h, heading, block + line)
    return blocks


def sync(spec_dir: Path) -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, (doc, headings) in FILES.items():
        found = document_blocks(spec_dir, doc)
        parts = [HEADER.format(doc=doc)]
        for heading in headings:
            block = found[heading]
            parts.append(f"# @spec {doc} python {sha(block)} {heading}\n{block}")
        (FIXTURES / name).write_text("".join(parts), encoding="utf-8")


def check(spec_dir: Path | None) -> list[str]:
    problems = []
    for name, (doc, headings) in FILES.items():
        blocks = fixture_blocks(FIXTURES / name)
        if [b[2] for b in blocks] != headings:
            problems.append(f"{name}: blocks {[b[2] for b in blocks]}, expected {headings}")
        for bdoc, h, heading, block in blocks:
            if sha(block) != h:
                problems.append(f"{name}: block {heading!r} was edited (sha256 {sha(block)}, recorded {h})")
            if spec_dir is not None and document_blocks(spec_dir, bdoc).get(heading) != block:
                problems.append(f"{name}: block {heading!r} differs from {bdoc} in {spec_dir}")
    return problems


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "sync":
        sync(Path(sys.argv[2]))
    found = check(Path(sys.argv[2]) if len(sys.argv) >= 3 else None)
    print("\n".join(found) or "spec examples: copies match")
    sys.exit(1 if found else 0)
