"""The large-scale docs state no measured figures: results live in generated files the docs point to
(results/table1.md, the benchmarks' output, the jobs' logs), so the docs cannot go stale."""
import re

import pytest

from helpers.llm import ROOT

DOCS = ["docs/llm.md", "docs/llm_probes.md"]
# A measurement: a decimal number with a unit of time, rate, memory or a percentage ("41 ms",
# "0.47 GiB", "9.4 CPU-seconds", "1.36x"), a time or rate unit after any number, or a Markdown table
# row with two or more decimal cells (a results table: "| P2C | 22.0 | 0.0 |").
MEASURED = re.compile(r"\b\d+\.\d+\s*(%|ms\b|s\b|GiB|GB\b|MB\b|CPU-seconds|queries/s|tokens/s|x\b|×)"
                      r"|\b\d+(\.\d+)?\s*(ms|queries/s|tokens/s|CPU-seconds)\b")
DECIMAL_CELL = re.compile(r"\s*-?\d+\.\d+\s*")


def measured(line: str) -> bool:
    cells = line.split("|") if line.lstrip().startswith("|") else []
    return bool(MEASURED.search(line)) or sum(bool(DECIMAL_CELL.fullmatch(c)) for c in cells) >= 2


@pytest.mark.parametrize("doc", DOCS)
def test_docs_type_in_no_measured_figures(doc):
    lines = [line for line in (ROOT / doc).read_text().splitlines() if measured(line)]
    assert not lines, f"{doc}: measured figures typed in (point to the generated file instead): {lines}"


@pytest.mark.parametrize("line", ["| P2C | 22.0 | 0.0 | 99.6 | 0.0 |", "tiny shapes 41 ms per sample",
                                  "peak RSS 0.47 GiB", "took 9.4, 9.6 and 4.5 CPU-seconds",
                                  "128 queries in 8.89 s = 14.4 queries/s", "fine-tuning speed-up: 1.36x"])
def test_the_check_catches_what_the_docs_once_typed_in(line):
    assert measured(line)


@pytest.mark.parametrize("line", ["| `lr` | per dataset: LLaDA 5e-5 (T-REx 2e-4) |", "|---|---|", "r = 32, α = 64",
                                  "150 epochs, seeds 1, 42, 1234", "2 × 134 MB in float32 for 33.5M parameters"])
def test_settings_and_derived_sizes_are_not_measurements(line):
    assert not measured(line)
