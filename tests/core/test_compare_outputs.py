"""scripts/compare_outputs.py: the check that a refactor moved no result."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(before: Path, after: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts/compare_outputs.py"), str(before), str(after)],
                          capture_output=True, text=True)


def test_provenance_may_change_numbers_may_not(tmp_path):
    for name, code, value in (("before", "abc", 0.25), ("after", "def", 0.25)):
        (tmp_path / name / "figures").mkdir(parents=True)
        (tmp_path / name / "table2.csv").write_text(f"L,mean,code_version\n10,{value},{code}\n")
        (tmp_path / name / "figures" / "fig3.csv").write_text("delta,corr\n1,0.5\n")
    assert run(tmp_path / "before", tmp_path / "after").returncode == 0
    (tmp_path / "after" / "table2.csv").write_text("L,mean,code_version\n10,0.2500001,def\n")
    result = run(tmp_path / "before", tmp_path / "after")
    assert result.returncode == 1 and "differs  table2.csv" in result.stdout
    (tmp_path / "after" / "figures" / "fig3.csv").unlink()
    assert "missing" in run(tmp_path / "before", tmp_path / "after").stdout
