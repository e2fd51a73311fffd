"""The package's architecture as a rule: a study imports the shared code and its own folder, never a sibling study."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "revcurse"
SHARED = {"core", "plotting", "data"}
# What each folder may import besides itself. The ablation grid is built on the toy study (it trains and
# probes toy models with the toy command line); that is the one dependency between studies.
ALLOWED = {
    "core": set(),
    "plotting": {"core"},
    "data": {"core"},
    "toy": SHARED,
    "llm": SHARED,
    "theory": SHARED,
    "ablation": SHARED | {"toy"},
    "report": SHARED,
    # The config every entry point loads runs every study's checks (revcurse.pipeline.config); nothing imports it.
    "pipeline": SHARED | {"toy", "llm", "theory", "ablation", "report"},
}


def imported_folders(source: str, own: tuple[str, ...]) -> set[tuple[str, int]]:
    """(folder of revcurse imported, line) for every import of the module at ``own`` (its path parts under
    src/revcurse), relative imports resolved."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(own[:-1])[: len(own) - node.level]
                parts = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "revcurse":
                parts = node.module.split(".")[1:]
            else:
                continue
            if parts:
                found.add((parts[0], node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "revcurse" and len(parts) > 1:
                    found.add((parts[1], node.lineno))
    return found


def test_every_folder_is_in_the_rule():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(ALLOWED), "a new folder of src/revcurse needs its line in ALLOWED"
    assert not [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"], "modules belong in a folder"


def test_no_study_imports_a_sibling_study():
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        folder = path.relative_to(PACKAGE).parts[0]
        if folder not in ALLOWED:
            continue
        for imported, line in imported_folders(path.read_text(), path.relative_to(PACKAGE).parts):
            if imported != folder and imported not in ALLOWED[folder]:
                broken.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports revcurse.{imported}")
    assert not broken, "\n".join(broken)


def test_the_rule_sees_absolute_relative_and_plain_imports():
    source = "from revcurse.llm.plan import probe_runs\nfrom ..core.config import config_hash\nimport revcurse.theory.analysis\n"
    assert imported_folders(source, ("toy", "figures.py")) == {("llm", 1), ("core", 2), ("theory", 3)}
