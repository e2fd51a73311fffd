"""Every reference in the repository's code and docs is one a reader can follow: the paper's sections and files
of the repository, never the project's unpublished spec or its issue tracker's numbers."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXT_SUFFIXES = {".py", ".md", ".rst", ".smk", ".yaml", ".yml", ".sh", ".toml", ".txt", ".cfg"}
TEXT_NAMES = {"Snakefile", "run"}
# The spec's sections or file, or an issue or pull request by number. Written so that this file does not match it.
CITATION = re.compile(r"SPEC[ ]§|SPEC[.]md|\b(?:[Ii]ssues?|PRs?|[Pp]ull requests?) #?\d+\b|\(#\d+\)")


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    paths = [Path(line) for line in listed.splitlines() if not line.startswith("reference/paper/runs/")]
    return [path for path in paths if path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES]


def test_the_pattern_finds_citations_and_leaves_other_text_alone():
    cited = ["(SPEC" + " §7)", "see SPEC" + ".md", "issue" + " 13", "Issue" + " #27", "issues" + " 5 and 6",
             "fixed in (" + "#12)", "PR" + " 4"]
    assert all(CITATION.search(text) for text in cited)
    assert not any(CITATION.search(text) for text in [
        "spec §", "the run spec", "github.com/ML-GSAI/LLaDA/issues/89", "color #333", "## Heading", "# 10 seeds"])


def test_no_file_cites_the_spec_or_an_issue_number():
    assert len(tracked_text_files()) > 100
    found = [f"{path}:{number}: {line.strip()}" for path in tracked_text_files()
             for number, line in enumerate((ROOT / path).read_text(encoding="utf-8").splitlines(), 1)
             if CITATION.search(line)]
    assert not found, "cite the paper's section or a file of the repository instead:\n" + "\n".join(found)
