"""`snakemake --report results/report.html` on the session's finished quick run: every output a rule
wraps in report(...) is in the HTML, each with a rendered caption that says what was run."""
import json
import re
from pathlib import Path

import pytest
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings
from test_workflow import snakemake

QUICK = {"preset": "quick"}


def report_outputs(workflow_dir: Path) -> list:
    """Every output file pattern that some rule wraps in report(...), read from the parsed workflow."""
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
def report(quick_all, tmp_path_factory):
    """The report's results (path -> name, caption, ...), as the HTML embeds them."""
    html = tmp_path_factory.mktemp("report") / "report.html"
    snakemake("--report", str(html), "--config", "preset=quick", cwd=quick_all)
    results = re.search(r"^\s*var results = (\{.*\});?\s*$", html.read_text(), re.M)
    return json.loads(results.group(1))


def test_every_report_output_is_in_the_report(quick_all, report):
    missing = [str(output) for output in report_outputs(quick_all)
               if not any(output.match(path) for path in report)]
    assert not missing


def test_captions_render_and_say_what_was_run(report):
    for path, result in report.items():
        caption = result["caption"]
        assert caption and "{{" not in caption and "snakemake.config" not in caption, path
        assert "quick" in caption, f"{path}: the caption does not name the preset"
