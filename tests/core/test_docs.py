"""The design notes in docs/ name files that exist, and the README shows the same kernel map."""

from __future__ import annotations

import re

import pytest

from edgemoe.paths import REPO

DOCS = sorted((REPO / "docs").glob("*.md"))


def table(text: str) -> list[str]:
    """The lines of the first markdown table in ``text`` after the kernel map's header row."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| kernel |"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def test_docs_exist() -> None:
    names = {p.name for p in DOCS}
    assert {"architecture.md", "numeric-contract.md", "register-map.md", "kernels.md"} <= names, names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_named_files_exist(doc) -> None:
    paths = re.findall(r"`((?:edgemoe|golden|hls|hw|host|sim|tests|docs)/[\w./-]+\.\w+)`", doc.read_text())
    missing = [p for p in paths if not (REPO / p).is_file()]
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


def test_kernel_map_rows_name_files() -> None:
    rows = table((REPO / "docs" / "kernels.md").read_text())[2:]
    assert len(rows) >= 7, rows
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 6, row
        assert "golden/fixed/" in cells[1] and "hls/" in cells[2] and "tests/" in cells[5], row


def test_readme_shows_the_kernel_map() -> None:
    docs = table((REPO / "docs" / "kernels.md").read_text())
    assert table((REPO / "README.md").read_text()) == docs, "README's kernel map differs from docs/kernels.md"


def test_nothing_refers_outside_the_repository() -> None:
    """The product cites no notes beside the checkout; only the optional real-data inputs live
    there (the README and the examples of ``edgemoe infer --help`` name them)."""
    suffixes = {".py", ".h", ".cpp", ".sv", ".md", ".tcl"}
    found = []
    for folder in ("edgemoe", "golden", "host", "sim", "hls", "hw", "docs"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix in suffixes and path.name != "cli.py":
                text = path.read_text()
                if "../shared" in text or "DESIGN.md" in text:
                    found.append(str(path.relative_to(REPO)))
    assert "DESIGN.md" not in (REPO / "README.md").read_text()
    assert not found, f"files that refer to notes outside the repository: {found}"
