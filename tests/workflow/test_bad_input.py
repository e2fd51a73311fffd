"""Bad input never costs a good output: an input a job would reject stops the run in a cheap check before
Snakemake reruns (and so first deletes the outputs of) the job that owns a dataset or a trained model."""
from helpers.workflow import copy_workflow, snakemake

PAIRS = "child,parent,parent_type\n" + "".join(
    f"Kid{i} Stone,Parent{i} Stone,{'mother' if i % 2 else 'father'}\n" for i in range(12))


def files(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_malformed_source_keeps_the_dataset_built_before(tmp_path):
    root = copy_workflow(tmp_path)
    (root / "pairs.csv").write_text(PAIRS)
    (root / "mine.yaml").write_text("datasets: {parent_child: {source: pairs.csv, pairs: 8}}\n")
    target = ("results/data/parent_child/manifest.json", "--configfile", "mine.yaml")
    snakemake(*target, cwd=root)
    built = files(root / "results/data/parent_child")
    with open(root / "pairs.csv", "a") as source:
        source.write("Kid99 Stone,Parent99 Stone,aunt\n")
    output = snakemake(*target, cwd=root, check=False)
    assert "error: pairs.csv:14: parent_type 'aunt'; expected 'mother' or 'father'" in output
    assert "Error in rule relational_check" in output and "Error in rule parent_child_dataset" not in output
    assert files(root / "results/data/parent_child") == built
