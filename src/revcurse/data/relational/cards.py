"""Dataset cards: a short Markdown page per relational dataset, built from its manifest."""
from __future__ import annotations

import json
from pathlib import Path

from revcurse.data.relational.records import SPLITS, flat_counts, read_jsonl

EXAMPLES_PER_SPLIT = 2  # spread over the file, so they show different facts
SPLIT_TITLES = {
    "train": "training (forward statements only)",
    "eval_forward": "forward queries",
    "eval_reverse": "reverse queries",
}


def render_card(manifest_path: Path) -> str:
    manifest_path = Path(manifest_path)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    root = manifest_path.parent
    counts = manifest["counts"]
    source = manifest["source"]
    lines = [
        f"# {manifest['title']} (`{manifest['dataset']}`)",
        "",
        f"- **Source:** {_describe_source(source)}",
        f"- **Shape:** {counts['facts']} facts ({_by_relation(counts['facts_by_relation'])}) over "
        f"{counts['entities']} entities, {counts['named_entities']} of them named",
        f"- **Settings:** `{json.dumps(manifest['settings'], sort_keys=True)}` "
        f"(hash `{manifest['settings_hash']}`), generator version {manifest['generator_version']}",
        f"- **Data hash:** `{manifest['data_hash']}` (SHA-256 of the data files' contents)",
        f"- **Built by:** {manifest['provenance'].get('code_version', 'unknown')}",
        "",
        "Trained on forward statements only; forward queries follow the trained mapping, reverse "
        "queries swap input and target. Exact match after lowercasing and stripping whitespace, "
        "against the query's accepted answers.",
        "",
        "## Directions",
        "",
        "| task | direction | trained on | train rows | forward queries | reverse queries |",
        "|---|---|---|---|---|---|",
    ]
    files = manifest["files"]
    for name, spec in manifest["directions"].items():
        rows = [str(files[spec[split]]["rows"]) for split in SPLITS]
        lines.append(f"| {spec['task']} | `{name}` | {spec['summary'].removeprefix('trained on ')} | " + " | ".join(rows) + " |")
    lines += _source_counts(source)
    for name, spec in manifest["directions"].items():
        lines += ["", f"## Examples: {spec['task']}", ""]
        for split in SPLITS:
            lines.append(f"{SPLIT_TITLES[split]} (`{spec[split]}`):")
            lines.append("")
            rows = read_jsonl(root / spec[split])
            for row in rows[:: max(1, len(rows) // EXAMPLES_PER_SPLIT)][:EXAMPLES_PER_SPLIT]:
                accepted = row.get("accepted_answers")
                extra = f" (accepted: {', '.join(repr(a) for a in accepted)})" if accepted else ""
                lines.append(f"- `{row['prompt']}` → `{row['completion']}`{extra}")
            lines.append("")
    lines += ["## Files", "", "| file | rows | SHA-256 |", "|---|---|---|"]
    lines += [f"| `{path}` | {f['rows']} | `{f['sha256'][:16]}…` |" for path, f in files.items()]
    return "\n".join(lines) + "\n"


def _describe_source(source: dict) -> str:
    if source["kind"] == "embedded":
        return "embedded fictitious default generated from `resources/relational/` (no external data)"
    files = ", ".join(f"`{f['name']}`" for f in source["files"])
    return f"imported ({source['kind']}) from {files}; every filter and rewrite is counted below"


def _source_counts(source: dict) -> list[str]:
    """The import's filter and answer-normalisation counts (docs/datasets.md names them)."""
    lines = []
    for key, title in (("filtering", "Filters"), ("normalised", "Answers normalised")):
        if source.get(key):
            lines += ["", f"## {title} (`source.{key}` of the manifest)", "", "| count | value |", "|---|---|"]
            lines += [f"| `{name}` | {value} |" for name, value in flat_counts(source[key]).items()]
    return lines


def _by_relation(counts: dict[str, int]) -> str:
    return ", ".join(f"{relation}: {n}" for relation, n in counts.items())
