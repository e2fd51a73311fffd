"""Fidelity report: every value of the paper the pipeline reproduces next to ours, with a verdict.

The paper's printed values, the practical margin of each kind of value and the paper's seed counts
come from one resource file (resources/paper_values.yaml; Table 3's values from
resources/paper_table3.csv); ours from the pipeline's tables and figure-value CSVs. A source that
was not built makes its rows "not run". How each claim becomes a difference with an interval, and
the verdict that follows from it and the margin: docs/fidelity.md.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.stats import t as student_t

from revcurse.core.config import smoke_test_line
from revcurse.core.io import listed_values

VERDICTS = ("agrees", "differs", "inconclusive", "not run")
SELECTIONS = ("final", "best")          # Table 2's rows: final step, best over training
SOURCES = ("table2", "table3", "fig3", "fig4", "fig5", "fig13")
# The report's artifacts, in its order: (source, Table 2 selection or "", name).
ARTIFACTS = (("table2", "final", "Table 2, final step"), ("table2", "best", "Table 2, best over training"),
             ("table3", "", "Table 3"), ("fig3", "", "Figure 3"), ("fig4", "", "Figure 4"),
             ("fig5", "", "Figure 5"), ("fig13", "", "Figure 13"))
COLUMNS = ["id", "artifact", "group", "cell", "where", "printed", "claim", "kind", "statistic", "source",
           "selection", "primary", "ours", "low", "high", "interval", "difference", "diff_low", "diff_high",
           "noise", "margin", "verdict", "detail"]


# ---------------------------------------------------------------- claims and verdicts
@dataclass(frozen=True)
class Claim:
    """A printed value as a comparison: ``op`` is "=", "≈" or ">"; ``decimals`` its printed precision."""
    op: str
    value: float
    decimals: int

    def __str__(self) -> str:
        return f"{self.op} {self.value:.{self.decimals}f}"


def parse_claim(text: str) -> Claim:
    """"99.31" (equals), "≈ 0.999" (near), "> 0.6" (above)."""
    match = re.fullmatch(r"\s*(=|≈|>)?\s*(-?\d+(?:\.(\d+))?)\s*", str(text))
    if not match:
        raise ValueError(f"claim {text!r}: expected a number, optionally after =, ≈ or >")
    op, number, decimals = match.groups()
    return Claim(op or "=", float(number), len(decimals or ""))


def verdict(claim: Claim, diff_low: float, diff_high: float, margin: float) -> str:
    """The claim judged on the 95% interval [diff_low, diff_high] of ours − paper and the margin.

    "=" and "≈" (an equivalence test): agrees when the whole interval lies within ±margin, differs
    when it lies wholly beyond one side, else inconclusive (it spans a side of the margin). ">" (a
    non-inferiority test): agrees when the interval lies above −margin, differs when it lies below,
    else inconclusive. A missing bound: "not run".
    """
    if diff_low is None or diff_high is None or math.isnan(diff_low) or math.isnan(diff_high):
        return "not run"
    if claim.op in ("=", "≈"):
        if -margin <= diff_low and diff_high <= margin:
            return "agrees"
        return "differs" if diff_low > margin or diff_high < -margin else "inconclusive"
    if claim.op == ">":
        return "agrees" if diff_low >= -margin else "differs" if diff_high < -margin else "inconclusive"
    raise ValueError(f"unknown comparison {claim.op!r}")


def t_half_width(sd, n, other_n=np.inf) -> np.ndarray:
    """Half-width of the Student-t 95% interval (df n − 1) of a mean of n values with sd ``sd``, or,
    given ``other_n``, of that mean minus another mean of ``other_n`` values with the same sd; NaN for n < 2."""
    sd, n = np.asarray(sd, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= 2, student_t.ppf(0.975, np.maximum(n - 1, 1)) * sd * np.sqrt(1 / n + 1 / other_n),
                        np.nan)


# ---------------------------------------------------------------- resource file and sources
def load_paper_values(path: str | Path) -> dict:
    """resources/paper_values.yaml, checked: a margin per kind; every entry has an id, where it is
    printed (``where``, ``line``), the printed value (``printed``, or ``file`` for Table 3), its kind,
    what of ours it is compared with (``ours.source``) and, for a figure claim, the statistic tested."""
    document = yaml.safe_load(Path(path).read_text())
    margins = document.get("margins") or {}
    for kind, margin in margins.items():
        if not isinstance(margin.get("margin"), (int, float)) or margin["margin"] < 0 or not margin.get("why"):
            raise ValueError(f"{path}: margin {kind} needs a number ≥ 0 (margin) and its reason (why)")
    seen = set()
    for entry in document["values"]:
        missing = [key for key in ("id", "where", "line", "ours", "kind") if key not in entry]
        if missing or not ("printed" in entry or "file" in entry):
            raise ValueError(f"{path}: entry {entry.get('id', entry)} lacks {missing or ['printed or file']}")
        if entry["id"] in seen:
            raise ValueError(f"{path}: duplicate id {entry['id']}")
        source = entry["ours"].get("source")
        if source not in SOURCES:
            raise ValueError(f"{path}: {entry['id']}: ours.source must be one of {SOURCES}")
        if entry["kind"] not in margins:
            raise ValueError(f"{path}: {entry['id']}: kind {entry['kind']!r} has no margin in `margins`")
        if source.startswith("fig") and source not in STATISTICS.get(entry.get("statistic"), ((),))[0]:
            names = [name for name, (sources, *_) in STATISTICS.items() if source in sources]
            raise ValueError(f"{path}: {entry['id']}: statistic must be one of {names}")
        if source == "table2" and source not in {item.get("source") for item in document.get("paper_seeds", [])}:
            raise ValueError(f"{path}: {entry['id']}: `paper_seeds` needs the seeds the paper averages for {source}")
        seen.add(entry["id"])
        if "printed" in entry:
            parse_claim(entry.get("claim", entry["printed"]))      # fails early on a malformed claim
    return document


def read_sources(paths: dict[str, str | Path]) -> dict[str, pd.DataFrame | None]:
    """Each source's table, or None where it was not given or not built."""
    unknown = sorted(set(paths) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown sources {unknown}; expected some of {SOURCES}")
    return {name: pd.read_csv(paths[name]) if name in paths and Path(paths[name]).exists() else None
            for name in SOURCES}


def _row(entry: dict, claim: Claim, source: str, margin: float, ours=np.nan, low=np.nan, high=np.nan,
         interval="", diff=(np.nan, np.nan), noise="", detail="", selection="", primary=True) -> dict:
    """One compared value; ``diff`` is the 95% interval of ours − paper that the verdict reads."""
    result = verdict(claim, *diff, margin)
    ran = result != "not run"
    cell = entry["ours"]
    length = cell.get("L", cell.get("length"))
    return {
        "id": entry["id"] + (f"/{selection}" if selection else ""),
        "artifact": next(name for s, sel, name in ARTIFACTS if s == source and sel == selection),
        "group": f"{cell['model'].upper()} {cell['direction']}" if "direction" in cell else "",
        "cell": entry.get("cell", f"L = {length}" if length is not None else ""),
        "where": f"{entry['where']}, line {entry['line']}", "printed": entry["printed"], "claim": str(claim),
        "kind": entry["kind"], "statistic": STATISTICS[entry["statistic"]][2] if "statistic" in entry else "",
        "source": source, "selection": selection, "primary": primary, "ours": ours, "low": low, "high": high,
        "interval": interval if ran else "", "difference": ours - claim.value if ran else np.nan,
        "diff_low": diff[0] if ran else np.nan, "diff_high": diff[1] if ran else np.nan,
        "noise": noise if ran else "", "margin": margin, "verdict": result,
        "detail": detail if ran else f"{source} not built" if not detail else detail,
    }


def _select(frame: pd.DataFrame, **keys) -> pd.DataFrame:
    for column, value in keys.items():
        frame = frame[frame[column] == value]
    return frame


# ---------------------------------------------------------------- Table 2
def _seed_count(seeds) -> int:
    """Table 2's ``seeds``: a count, or the seeds themselves ("0 / 1 / 2")."""
    if isinstance(seeds, str):
        return len([s for s in re.split(r"[/,\s]+", seeds) if s])
    return 0 if pd.isna(seeds) else int(seeds)


def table2_rows(entry: dict, table: pd.DataFrame | None, primary: str, margin: float, paper_seeds: int) -> list[dict]:
    """One row per selection (final, best). Ours: the seed t interval with ≥ 2 seeds, else the Wilson
    one. Ours − paper: the t interval of two means at our seed sd, ours over our seeds and the
    paper's over ``paper_seeds`` (it prints no spread); with < 2 seeds, our Wilson interval alone."""
    claim = parse_claim(entry.get("claim", entry["printed"]))
    ours = entry["ours"]
    rows = []
    for selection in SELECTIONS:
        common = dict(selection=selection, primary=selection == primary)
        if table is None:
            rows.append(_row(entry, claim, "table2", margin, **common))
            continue
        if "selection" not in table.columns:      # a table from before final/best: its rows are the final step
            table = table.assign(selection="final")
        cell = _select(table, L=int(ours["L"]), model=ours["model"], direction=ours["direction"], selection=selection)
        if cell.empty:
            rows.append(_row(entry, claim, "table2", margin, detail=f"no {selection} row for this cell", **common))
            continue
        cell = cell.iloc[0]
        n, sd, mean = _seed_count(cell.get("seeds")), float(cell.get("seed_std_pct", np.nan)), float(cell["mean_pct"])
        seed_low, seed_high = cell.get("seed_ci95_low_pct", np.nan), cell.get("seed_ci95_high_pct", np.nan)
        difference = mean - claim.value
        if n >= 2 and np.isfinite(seed_low) and np.isfinite(seed_high) and np.isfinite(sd):
            low, high, interval = seed_low, seed_high, f"seed t95 (n={n})"
            half = float(t_half_width(sd, n, paper_seeds))
            diff = (difference - half, difference + half)
            noise = f"t95, df {n - 1}: ours over {n} seeds − paper over {paper_seeds}, both at our seed sd {sd:.2f}"
        else:
            low, high, interval = cell["ci95_low_pct"], cell["ci95_high_pct"], f"Wilson 95% pooled samples (seeds: {n})"
            diff = (low - claim.value, high - claim.value)
            noise = "our Wilson interval only: the paper's seed noise needs our seed sd (≥ 2 seeds)"
        detail = f"seeds {cell.get('seeds')}, preset {cell.get('preset', '?')}"
        rows.append(_row(entry, claim, "table2", margin, mean, float(low), float(high), interval, diff, noise,
                         detail, **common))
    return rows


# ---------------------------------------------------------------- Table 3
def table3_rows(entry: dict, computed: pd.DataFrame | None, printed_path: Path, margin: float) -> list[dict]:
    """Each printed bound against our exact value; the margin (one unit of the printed last digit)
    lets the paper agree when it printed our value rounded down, to nearest or up (docs/theory.md)."""
    printed = pd.read_csv(printed_path, comment="#", dtype={"printed_bound": str})
    rows = []
    for _, cell in printed.iterrows():
        claim = parse_claim(cell["printed_bound"])
        name = f"Δ={cell['delta']:g}, m={cell['num_planes']}, c={cell['threshold']:.2f}"
        item = {**entry, "id": f"table3/{name}", "printed": cell["printed_bound"], "cell": name}
        if computed is None:
            rows.append(_row(item, claim, "table3", margin))
            continue
        match = computed[np.isclose(computed["delta"], cell["delta"]) & (computed["num_planes"] == cell["num_planes"])
                         & np.isclose(computed["threshold"], cell["threshold"])]
        if match.empty:
            rows.append(_row(item, claim, "table3", margin, detail=f"{name} not computed (config.yaml theory:)"))
            continue
        value = float(match["cantelli_bound"].iloc[0])
        rows.append(_row(item, claim, "table3", margin, value, value, value, "exact", (value - claim.value,) * 2,
                         "none: exact arithmetic on both sides", f"computed {value:.6f}"))
    return rows


# ---------------------------------------------------------------- figures
def _bin_mean(curve: pd.DataFrame, claim: Claim) -> tuple:
    """Fig. 3/13: the correlation of forward and reverse attention scores vs Δ1 + Δ2 at the trained
    (last) step; our value is the curve's mean over Δ bins (and heads), ± the mean of the bins' seed
    t95 half-widths (the sd of a mean is at most the mean of the sds; half-width 0 with one seed)."""
    curve = curve[curve["step"] == curve["step"].max()]
    half = np.nan_to_num(t_half_width(curve["correlation_sd"], curve["seeds"]), nan=0.0)
    level, mean_half = float(curve["correlation"].mean()), float(half.mean())
    point_low, point_high = curve["correlation"] - half, curve["correlation"] + half
    above, below = int((point_low > claim.value).sum()), int((point_high <= claim.value).sum())
    pooling = f", pooling {curve['pooling'].iloc[0]}" if "pooling" in curve.columns else ""
    detail = (f"step {curve['step'].max()}, {int(curve['seeds'].max())} seed(s){pooling}; {len(curve)} bins "
              f"Δ1+Δ2 = {curve['distance_sum'].min()}…{curve['distance_sum'].max()}, by their own interval: "
              f"{above} above {claim.value:g}, {below} at or below, {len(curve) - above - below} straddling")
    return level, level - mean_half, level + mean_half, "mean over bins ± mean per-bin seed t95", detail


def _worst_step(curve: pd.DataFrame, claim: Claim) -> tuple | None:
    """Fig. 4: the gradient cosine over training (steps > 0): the step whose mean over seeds is
    farthest from the printed value, ± its seed t95 half-width (0 with one seed)."""
    curve = curve[curve["step"] > 0]
    if curve.empty:
        return None
    worst = curve.loc[(curve["mean"] - claim.value).abs().idxmax()]
    half = float(np.nan_to_num(t_half_width(worst["sd"], worst["seeds"]), nan=0.0))
    detail = (f"L = {curve['length'].iloc[0]}, {len(curve)} steps {curve['step'].min()}…{curve['step'].max()}, "
              f"per-step mean {curve['mean'].min():.4f}…{curve['mean'].max():.4f}, farthest at step {worst['step']}, "
              f"{int(curve['seeds'].max())} seed(s)")
    return float(worst["mean"]), worst["mean"] - half, worst["mean"] + half, "that step's seed t95", detail


def _box(column: str):
    """Fig. 5: one statistic of the box of gradient cosines (steps × letters × seeds) of one L. The
    CSV keeps the pooled box only, not one per seed, so the value has no interval: a point."""
    def measure(box: pd.DataFrame, claim: Claim) -> tuple:
        box = box.iloc[0]
        detail = (f"{int(box['values'])} values, min {box['min']:.4f}, q25 {box['q25']:.4f}, median "
                  f"{box['median']:.4f}, q75 {box['q75']:.4f}, max {box['max']:.4f}")
        value = float(box[column])
        return value, value, value, "point: the CSV keeps one box pooled over steps × letters × seeds", detail
    return measure


# name: (the sources it applies to, the CSV's panel, what it is, our (value, low, high, interval, detail))
STATISTICS = {
    "bin_mean": (("fig3", "fig13"), "correlation", "mean over the Δ1 + Δ2 bins, last step", _bin_mean),
    "worst_step": (("fig4",), "cosine", "the step (> 0) farthest from the printed value", _worst_step),
    "median": (("fig5",), "cosine", "the box's median", _box("median")),
    "q25": (("fig5",), "cosine", "the box's lower quartile", _box("q25")),
}


def figure_rows(entry: dict, figure: pd.DataFrame | None, source: str, margin: float) -> list[dict]:
    """A claim about a figure, tested on the entry's statistic of the CSV rows ``entry["ours"]`` names.
    The printed value is a threshold or a description, not a measurement: ours − paper carries our
    interval only."""
    claim = parse_claim(entry["claim"])
    if figure is None:
        return [_row(entry, claim, source, margin)]
    _, panel, _, measure = STATISTICS[entry["statistic"]]
    if "panel" in figure.columns:
        figure = figure[figure["panel"] == panel]
    cell = {key: value for key, value in entry["ours"].items() if key != "source"}
    points = _select(figure, **cell)
    result = None if points.empty else measure(points, claim)
    if result is None:
        return [_row(entry, claim, source, margin, detail=f"no {panel} rows for {cell} in {source}")]
    ours, low, high, interval, detail = result
    return [_row(entry, claim, source, margin, ours, low, high, interval, (low - claim.value, high - claim.value),
                 "ours only: the printed value is a threshold, not a measurement", detail)]


# ---------------------------------------------------------------- the report
def compare(paper_values: dict, sources: dict[str, pd.DataFrame | None], primary: str = "final",
            root: Path = Path(".")) -> pd.DataFrame:
    """One row per printed value (Table 2: per selection), in the resource file's order."""
    if primary not in SELECTIONS:
        raise ValueError(f"selection {primary!r}; expected one of {SELECTIONS}")
    margins = {kind: float(m["margin"]) for kind, m in paper_values["margins"].items()}
    paper_seeds = {item["source"]: int(item["seeds"]) for item in paper_values.get("paper_seeds", [])}
    rows = []
    for entry in paper_values["values"]:
        source, margin = entry["ours"]["source"], margins[entry["kind"]]
        frame = sources.get(source)
        if source == "table2":
            rows += table2_rows(entry, frame, primary, margin, paper_seeds["table2"])
        elif source == "table3":
            rows += table3_rows(entry, frame, root / entry["file"], margin)
        else:
            rows += figure_rows(entry, frame, source, margin)
    return pd.DataFrame(rows, columns=COLUMNS)


def _number(value: float, kind: str, sign: str = "") -> str:
    """A value at the precision of its kind: success rates in points to 2 decimals, the rest to 4."""
    return "–" if pd.isna(value) else f"{value:{sign}.{2 if kind == 'success_rate' else 4}f}"


def _margin(row, units: dict[str, str]) -> str:
    """"±m" for = and ≈ (ours − paper within it), "≥ −m" for > (ours at most m below the threshold)."""
    unit = f" {units[row.kind]}" if units.get(row.kind) else ""
    return f"{'≥ −' if row.claim.startswith('>') else '±'}{_number(row.margin, row.kind)}{unit}"


def _span(low: float, high: float, kind: str) -> str:
    return _number(low, kind, "+") if low == high else f"{_number(low, kind, '+')} to {_number(high, kind, '+')}"


def summary(table: pd.DataFrame, units: dict[str, str]) -> pd.DataFrame:
    """Per artifact, in the report's order: how many values, the count of each verdict, the range of
    ours − paper over the values that ran, and the margin."""
    order = [name for _, _, name in ARTIFACTS if name in set(table["artifact"])]
    counts = pd.crosstab(table["artifact"], table["verdict"]).reindex(index=order, columns=list(VERDICTS), fill_value=0)
    rows = []
    for artifact, part in table.groupby("artifact", sort=False):
        ran, first = part.dropna(subset=["difference"]), part.iloc[0]
        spread = "–" if ran.empty else _span(ran["difference"].min(), ran["difference"].max(), first.kind)
        rows.append({"artifact": artifact, "values": len(part), "ours − paper": spread, "margin": _margin(first, units)})
    return (pd.DataFrame(rows).set_index("artifact").join(counts).reindex(order).reset_index()
            [["artifact", "values", *VERDICTS, "ours − paper", "margin"]])


WORDS = {"agrees": "Reproduced", "differs": "Not reproduced", "inconclusive": "Undecided (the interval spans the margin)",
         "not run": "Not run"}


def paragraph(table: pd.DataFrame, units: dict[str, str]) -> str:
    """What reproduced and what did not, one line per artifact, in words, from the table alone: per
    verdict, the cells (grouped by model and direction where there are some) and their ours − paper."""
    lines = []
    for artifact in [name for _, _, name in ARTIFACTS if name in set(table["artifact"])]:
        part = table[table["artifact"] == artifact]
        kind, unit = part["kind"].iloc[0], f" {units.get(part['kind'].iloc[0], '')}".rstrip()
        said = []
        for result in VERDICTS:
            clauses = []
            for group, rows in part[part["verdict"] == result].groupby("group", sort=False):
                names = rows["cell"].str.removeprefix("L = ")
                cells = ("" if len(part) == 1 else f"{len(rows)} of {len(part)}" if len(rows) > 8 or names.eq("").any()
                         else f"at {'L = ' if rows['cell'].str.startswith('L = ').all() else ''}{', '.join(names)}")
                size = "" if result == "not run" else (
                    f"ours − paper {_span(rows['difference'].min(), rows['difference'].max(), kind)}{unit}")
                if result == "inconclusive":
                    size += f", interval {_span(rows['diff_low'].min(), rows['diff_high'].max(), kind)}"
                clauses.append(" ".join(filter(None, [group, cells, f"({size})" if size else ""])))
            if clauses:
                said.append(f"{WORDS[result]}: {'; '.join(clauses)}")
        tested = "; ".join(s for s in part["statistic"].unique() if s)
        lines.append(f"- **{artifact}**{f' (tested on {tested})' if tested else ''}: " + ". ".join(said) + ".")
    return "\n".join(lines) + "\n"


def _section(table: pd.DataFrame, title: str, units: dict[str, str]) -> str:
    lines = [f"## {title}", "",
             "| value | printed | claim | ours [95% interval] | ours − paper [95% interval] | margin | verdict | how / detail |",
             "|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples():
        kind = row.kind
        if row.verdict == "not run":
            ours = difference = "–"
        else:
            ours = f"{_number(row.ours, kind)} [{_number(row.low, kind)}, {_number(row.high, kind)}] {row.interval}"
            difference = (f"{_number(row.difference, kind, '+')} [{_number(row.diff_low, kind, '+')}, "
                          f"{_number(row.diff_high, kind, '+')}] {row.noise}")
        statistic = f"{row.statistic}; " if row.statistic else ""
        name = row.id.removesuffix(f"/{row.selection}") if row.selection else row.id
        lines.append(f"| {name} ({row.where}) | {row.printed} | {row.claim} | {ours} | {difference} | "
                     f"{_margin(row, units)} | **{row.verdict}** | {statistic}{row.detail} |")
    return "\n".join(lines) + "\n"


def markdown(table: pd.DataFrame, sources: dict[str, pd.DataFrame | None], paths: dict[str, str],
             primary: str, paper_values: dict) -> str:
    """The report: the summary per artifact and its paragraph, the sources read, one section per
    table/figure."""
    units = {kind: m.get("unit", "") for kind, m in paper_values["margins"].items()}
    margins = "\n".join(f"- {kind}: {_number(float(m['margin']), kind)} {m.get('unit', '')}".rstrip()
                        + f" ({m['why']})" for kind, m in paper_values["margins"].items())
    read = []
    for name in SOURCES:
        frame = sources.get(name)
        if frame is None:
            read.append(f"- {name}: not run ({paths[name] + ' absent' if name in paths else 'not built yet'})")
            continue
        stamp = [f"{column} {', '.join(listed_values(frame[column]))}"
                 for column in ("preset", "config_hash", "code_version") if column in frame.columns]
        read.append(f"- {name}: `{paths[name]}`" + (f" ({'; '.join(stamp)})" if stamp else ""))
    presets = {str(p) for frame in sources.values() if frame is not None and "preset" in frame.columns
               for p in frame["preset"].dropna().unique()}
    parts = [
        "# Fidelity: the paper's printed values next to ours\n",
        smoke_test_line(presets, "small models trained for few steps, so no verdict below says anything about "
                                 "the paper")
        + "Built by `python -m revcurse.report fidelity` from the paper's printed values and our margins "
        "(`resources/paper_values.yaml`, `resources/paper_table3.csv`) and the pipeline's outputs. A verdict "
        "reads the 95% interval of ours − paper against the margin of its kind: **agrees** when the interval "
        "lies within the margin, **differs** when it lies beyond it, **inconclusive** when it spans it "
        "(`docs/fidelity.md`). Table 2 is read at its final step and, apart, at its best over training "
        f"(biased upward: `docs/toy.md`); the CSV marks the {primary} rows `primary`.\n",
        "## Summary per artifact\n\n" + summary(table, units).to_markdown(index=False) + "\n",
        "## What reproduced\n\n" + paragraph(table, units),
        "Margins:\n\n" + margins + "\n",
        "Sources:\n\n" + "\n".join(read) + "\n",
    ]
    sections = [("table2", "Table 2"), (("fig3", "fig13"), "Figures 3 and 13: attention-score correlation"),
                ("fig4", "Figure 4: gradient cosine, attention-only L = 2"), ("fig5", "Figure 5: gradient cosine per L"),
                ("table3", "Table 3: Cantelli bounds")]
    for names, title in sections:
        part = table[table["source"].isin([names] if isinstance(names, str) else names)]
        if names == "table2":
            for selection in SELECTIONS:
                label = "final step" if selection == "final" else "best over training"
                parts.append(_section(part[part["selection"] == selection], f"{title}, {label}", units))
        elif not part.empty:
            parts.append(_section(part, title, units))
    return "\n".join(parts)
