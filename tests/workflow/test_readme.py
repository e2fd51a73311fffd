from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text().splitlines()
    test_command = next(line for line in ci if "pytest" in line)
    assert f"\n{test_command}\n" in readme
    assert "torch==2.13.0" in test_command
