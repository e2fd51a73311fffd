"""`snakemake --report` on the session's finished quick run (conftest.quick_all), as the report's front
page says to build it: every output a rule wraps in report(...) is in the HTML, labelled, with
a rendered caption that names the quick preset; every table is a page of the report whose text holds
every value of the table's CSV and Markdown files."""
import base64
import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings

from helpers.workflow import snakemake

QUICK = {"preset": "quick"}
RESULTS = "results/quick"


def report_outputs(workflow_dir: Path) -> list:
    """Every output file pattern that a rule wraps in report(...), read from the parsed workflow."""
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(config=QUICK),
            storage_settings=StorageSettings(),
            snakefile=workflow_dir / "Snakefile",
            workdir=workflow_dir,
        )._workflow
        return [output for rule in workflow.rules for output in rule.output if output.flags.get("report")]


@pytest.fixture(scope="module")
def built(quick_all, tmp_path_factory):
    """The report's description and results (path -> name, labels, caption, data, ...), as the HTML embeds them."""
    html = tmp_path_factory.mktemp("report") / "report.html"
    snakemake("--report", str(html), "--config", "preset=quick", cwd=quick_all)
    text = html.read_text()
    results = json.loads(re.search(r"^\s*var results = (\{.*\});?\s*$", text, re.M).group(1))
    description = json.loads(re.search(r"^\s*var workflow_desc = (.*?);?\s*$", text, re.M).group(1))
    return description, results


@pytest.fixture(scope="module")
def pages(built) -> str:
    """The text of every HTML page of the report (the tables), one string."""
    _, results = built
    html = [r for r in results.values() if r["mime_type"] == "text/html"]
    return "\n".join(base64.b64decode(r["data_uri"].split(",", 1)[1]).decode() for r in html)


def test_every_report_output_is_in_the_report_with_a_label(quick_all, built):
    _, results = built
    missing = [str(output) for output in report_outputs(quick_all)
               if not any(output.match(path) for path in results)]
    assert not missing
    unlabelled = [path for path, result in results.items() if not result["labels"]]
    assert not unlabelled                      # e.g. the theory outputs: a name, not a bare path
    assert all(path.startswith(f"{RESULTS}/") for path in results), "a file of another preset is in the report"


def test_captions_render_and_say_what_was_run(built):
    description, results = built
    for path, result in results.items():
        caption = result["caption"]
        assert caption and "{{" not in caption and "snakemake.config" not in caption, path
        assert "quick" in caption, f"{path}: the caption does not name the preset"
    assert "preset <strong>quick</strong>" in description and "QUICK PRESET" in description


def test_every_table_is_a_page_and_table_3_is_there(built):
    _, results = built
    labels = {result["labels"].get("table") for result in results.values() if result["mime_type"] == "text/html"}
    assert {"Table 1", "Table 2", "Table 3", "Table 4", "Table 5", "Table 6", "Decoding choices",
            "Table 3 vs the paper", "Theorem 4.1, Monte-Carlo check", "Theorem B.1, closed form vs autograd",
            "Ablation grid and conclusion", "Fidelity report"} <= labels
    figures = [r for r in results.values() if r["mime_type"] == "image/png"]
    assert len(figures) >= 12 and all(r["labels"].get("figure") and len(r["caption"]) > 200 for r in figures)


def test_the_pages_hold_every_number_of_every_table(quick_all, pages):
    text = html.unescape(re.sub(r"<[^>]+>", "", pages))          # what the pages show, without the markup
    tables = sorted((quick_all / RESULTS).glob("*.csv")) + sorted((quick_all / RESULTS / "theory").glob("*.csv"))
    tables = [t for t in tables if t.name not in ("ablation_per_seed.csv", "eq1_trace.csv")]   # figures' values
    assert {t.name for t in tables} >= {"table1.csv", "table2.csv", "table3.csv", "table4.csv", "ablation.csv",
                                        "toy_decoding_choices.csv", "theorem41_mc.csv", "theoremB1_check.csv",
                                        "fidelity.csv"}
    for table in tables:
        cells = pd.read_csv(table, dtype=str, keep_default_na=False).to_numpy().ravel()
        numbers = {c for c in cells if re.fullmatch(r"-?[\d.]+(e[-+]?\d+)?", c)}
        absent = sorted(n for n in numbers if f">{n}<" not in pages)
        assert not absent, f"{table.name}: {absent[:5]} not in the report"
    for markdown in sorted((quick_all / RESULTS).glob("*.md")):
        rows = [line for line in markdown.read_text().splitlines() if line.startswith("|") and "---" not in line]
        cells = {re.sub(r"\*\*|`", "", cell.strip()) for row in rows for cell in row.strip("|").split("|")}
        absent = sorted(c for c in cells if re.search(r"\d", c) and c not in text)
        assert not absent, f"{markdown.name}: {absent[:5]} not in the report"
    assert pages.count("quick preset — a smoke test of the pipeline") >= 9    # each table's bold line
