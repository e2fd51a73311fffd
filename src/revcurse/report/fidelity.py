"""Fidelity report: every value of the paper the pipeline reproduces next to ours, with a verdict.

The paper's printed values come from one resource file (resources/paper_values.yaml; Table 3's
from resources/paper_table3.csv); ours from the pipeline's tables and figure-value CSVs. A source
that was not built makes its rows "not run". How each claim becomes a (value, interval) pair and
how the verdict follows from them: docs/fidelity.md.
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
COLUMNS = ["id", "where", "printed", "claim", "source", "selection", "primary", "ours", "low", "high",
           "interval", "difference", "verdict", "detail"]


# ---------------------------------------------------------------- claims and verdicts
@dataclass(frozen=True)
class Claim:
    """A printed value as a comparison: ``op`` is "=", "≈" or ">"; ``decimals`` its printed precision."""
    op: str
    value: float
    decimals: int

    @property
    def unit(self) -> float:
        """One unit of the last printed digit."""
        return 10.0 ** -self.decimals

    def __str__(self) -> str:
        return f"{self.op} {self.value:.{self.decimals}f}"


def parse_claim(text: str) -> Claim:
    """"99.31" (equals), "≈ 0.999" (equal at the printed precision), "> 0.6" (above)."""
    match = re.fullmatch(r"\s*(=|≈|>)?\s*(-?\d+(?:\.(\d+))?)\s*", str(text))
    if not match:
        raise ValueError(f"claim {text!r}: expected a number, optionally after =, ≈ or >")
    op, number, decimals = match.groups()
    return Claim(op or "=", float(number), len(decimals or ""))


def verdict(claim: Claim, low: float, high: float) -> str:
    """The claim checked against our interval [low, high] (bounds included).

    "=": agrees when the printed value lies in the interval, else differs. ">": agrees when the
    whole interval is above the value, differs when it is all at or below, else inconclusive.
    "≈": the printed value stands for [v − unit/2, v + unit/2]; agrees when our interval lies in
    it, differs when they do not meet, else inconclusive. A missing bound: "not run".
    """
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "not run"
    if claim.op == "=":
        return "agrees" if low <= claim.value <= high else "differs"
    if claim.op == ">":
        return "agrees" if low > claim.value else "differs" if high <= claim.value else "inconclusive"
    if claim.op == "≈":
        band_low, band_high = claim.value - claim.unit / 2, claim.value + claim.unit / 2
        if band_low <= low and high <= band_high:
            return "agrees"
        return "differs" if high < band_low or low > band_high else "inconclusive"
    raise ValueError(f"unknown comparison {claim.op!r}")


def t_half_width(sd, n) -> np.ndarray:
    """Half-width of the Student-t 95% interval of a mean of n values with sd ``sd``; NaN for n < 2."""
    sd, n = np.asarray(sd, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= 2, student_t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(n), np.nan)


# ---------------------------------------------------------------- resource file and sources
def load_paper_values(path: str | Path) -> dict:
    """resources/paper_values.yaml, checked: every entry has an id, where it is printed (``where``,
    ``line``), the printed value (``printed``, or ``file`` for Table 3) and what of ours it is
    compared with (``ours.source``)."""
    document = yaml.safe_load(Path(path).read_text())
    seen = set()
    for entry in document["values"]:
        missing = [key for key in ("id", "where", "line", "ours") if key not in entry]
        if missing or not ("printed" in entry or "file" in entry):
            raise ValueError(f"{path}: entry {entry.get('id', entry)} lacks {missing or ['printed or file']}")
        if entry["id"] in seen:
            raise ValueError(f"{path}: duplicate id {entry['id']}")
        if entry["ours"].get("source") not in SOURCES:
            raise ValueError(f"{path}: {entry['id']}: ours.source must be one of {SOURCES}")
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


def _row(entry: dict, claim: Claim, source: str, ours=np.nan, low=np.nan, high=np.nan, interval="",
         detail="", selection="", primary=True) -> dict:
    result = verdict(claim, low, high)
    return {
        "id": entry["id"] + (f"/{selection}" if selection else ""), "where": f"{entry['where']}, line {entry['line']}",
        "printed": entry["printed"], "claim": str(claim), "source": source,
        "selection": selection, "primary": primary, "ours": ours, "low": low, "high": high,
        "interval": interval if result != "not run" else "",
        "difference": ours - claim.value if result != "not run" else np.nan, "verdict": result,
        "detail": detail if result != "not run" else f"{source} not built" if not detail else detail,
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


def table2_rows(entry: dict, table: pd.DataFrame | None, primary: str) -> list[dict]:
    """One row per selection (final, best): the seed t interval with ≥ 2 seeds, else the Wilson one."""
    claim = parse_claim(entry.get("claim", entry["printed"]))
    ours = entry["ours"]
    rows = []
    for selection in SELECTIONS:
        common = dict(selection=selection, primary=selection == primary)
        if table is None:
            rows.append(_row(entry, claim, "table2", **common))
            continue
        if "selection" not in table.columns:      # a table from before final/best: its rows are the final step
            table = table.assign(selection="final")
        cell = _select(table, L=int(ours["L"]), model=ours["model"], direction=ours["direction"], selection=selection)
        if cell.empty:
            rows.append(_row(entry, claim, "table2", detail=f"no {selection} row for this cell", **common))
            continue
        cell = cell.iloc[0]
        n = _seed_count(cell.get("seeds"))
        seed_low, seed_high = cell.get("seed_ci95_low_pct", np.nan), cell.get("seed_ci95_high_pct", np.nan)
        if n >= 2 and np.isfinite(seed_low) and np.isfinite(seed_high):
            low, high, interval = seed_low, seed_high, f"seed t95 (n={n})"
        else:
            low, high, interval = cell["ci95_low_pct"], cell["ci95_high_pct"], f"Wilson 95% pooled samples (seeds: {n})"
        detail = f"seeds {cell.get('seeds')}, preset {cell.get('preset', '?')}"
        rows.append(_row(entry, claim, "table2", float(cell["mean_pct"]), float(low), float(high), interval,
                         detail, **common))
    return rows


# ---------------------------------------------------------------- Table 3
def table3_rows(entry: dict, computed: pd.DataFrame | None, printed_path: Path) -> list[dict]:
    """Each printed bound against our exact value ± one unit of its last printed digit: the paper
    agrees when it printed our value rounded down, to nearest or up (docs/theory.md: it truncates)."""
    printed = pd.read_csv(printed_path, comment="#", dtype={"printed_bound": str})
    rows = []
    for _, cell in printed.iterrows():
        claim = parse_claim(cell["printed_bound"])
        name = f"Δ={cell['delta']:g}, m={cell['num_planes']}, c={cell['threshold']:.2f}"
        item = {**entry, "id": f"table3/{name}", "printed": cell["printed_bound"]}
        if computed is None:
            rows.append(_row(item, claim, "table3"))
            continue
        match = computed[np.isclose(computed["delta"], cell["delta"]) & (computed["num_planes"] == cell["num_planes"])
                         & np.isclose(computed["threshold"], cell["threshold"])]
        if match.empty:
            rows.append(_row(item, claim, "table3", detail=f"{name} not computed (config.yaml theory:)"))
            continue
        value = float(match["cantelli_bound"].iloc[0])
        rows.append(_row(item, claim, "table3", value, value - claim.unit, value + claim.unit,
                         f"exact ± {claim.unit:g} (printed precision)", f"computed {value:.6f}"))
    return rows


# ---------------------------------------------------------------- figures
def _curve_level(frame: pd.DataFrame, value: str, sd: str, n: str) -> tuple[float, float, float, np.ndarray]:
    """Mean of a curve's points and a conservative interval for it: ± the mean of the points' seed
    t95 half-widths (the sd of a mean is at most the mean of the sds). Half-width 0 with one seed."""
    half = np.nan_to_num(t_half_width(frame[sd], frame[n]), nan=0.0)
    level = float(frame[value].mean())
    return level, level - float(half.mean()), level + float(half.mean()), half


def _correlation(curve: pd.DataFrame, claim: Claim) -> tuple:
    """Fig. 3/13: the correlation of forward and reverse attention scores vs Δ1 + Δ2 at the trained
    (last) step; our value is the curve's mean over Δ bins (and heads)."""
    curve = curve[curve["step"] == curve["step"].max()]
    level, low, high, half = _curve_level(curve, "correlation", "correlation_sd", "seeds")
    point_low, point_high = curve["correlation"] - half, curve["correlation"] + half
    above, below = int((point_low > claim.value).sum()), int((point_high <= claim.value).sum())
    pooling = f", pooling {curve['pooling'].iloc[0]}" if "pooling" in curve.columns else ""
    detail = (f"step {curve['step'].max()}, {int(curve['seeds'].max())} seed(s){pooling}; {len(curve)} bins "
              f"Δ1+Δ2 = {curve['distance_sum'].min()}…{curve['distance_sum'].max()}, by their own interval: "
              f"{above} above {claim.value:g}, {below} at or below, {len(curve) - above - below} straddling")
    return level, low, high, "mean over bins ± mean per-bin seed t95", detail


def _cosine_curve(curve: pd.DataFrame, claim: Claim) -> tuple | None:
    """Fig. 4: the gradient cosine over training (steps > 0); our value is the curve's mean over steps."""
    curve = curve[curve["step"] > 0]
    if curve.empty:
        return None
    level, low, high, _ = _curve_level(curve, "mean", "sd", "seeds")
    detail = (f"L = {curve['length'].iloc[0]}, {len(curve)} steps {curve['step'].min()}…{curve['step'].max()}, "
              f"per-step mean {curve['mean'].min():.4f}…{curve['mean'].max():.4f}, {int(curve['seeds'].max())} seed(s)")
    return level, low, high, "mean over steps ± mean per-step seed t95", detail


def _cosine_box(box: pd.DataFrame, claim: Claim) -> tuple:
    """Fig. 5: the box of gradient cosines (steps × letters × seeds) of one L; interval = its quartiles."""
    box = box.iloc[0]
    detail = f"{int(box['values'])} values, min {box['min']:.4f}, median {box['median']:.4f}, max {box['max']:.4f}"
    return float(box["mean"]), float(box["q25"]), float(box["q75"]), "box q25…q75", detail


# source: (the CSV's panel compared, our (value, low, high, interval, detail) from the cell's rows)
FIGURE_CLAIMS = {
    "fig3": ("correlation", _correlation),
    "fig13": ("correlation", _correlation),
    "fig4": ("cosine", _cosine_curve),
    "fig5": ("cosine", _cosine_box),
}


def figure_rows(entry: dict, figure: pd.DataFrame | None, source: str) -> list[dict]:
    """A qualitative claim about a figure, checked on the rows of its CSV that ``entry["ours"]`` names."""
    claim = parse_claim(entry["claim"])
    if figure is None:
        return [_row(entry, claim, source)]
    panel, measure = FIGURE_CLAIMS[source]
    if "panel" in figure.columns:
        figure = figure[figure["panel"] == panel]
    cell = {key: value for key, value in entry["ours"].items() if key != "source"}
    points = _select(figure, **cell)
    result = None if points.empty else measure(points, claim)
    if result is None:
        return [_row(entry, claim, source, detail=f"no {panel} rows for {cell} in {source}")]
    return [_row(entry, claim, source, *result)]


# ---------------------------------------------------------------- the report
def compare(paper_values: dict, sources: dict[str, pd.DataFrame | None], primary: str = "final",
            root: Path = Path(".")) -> pd.DataFrame:
    """One row per printed value (Table 2: per selection), in the resource file's order."""
    if primary not in SELECTIONS:
        raise ValueError(f"selection {primary!r}; expected one of {SELECTIONS}")
    rows = []
    for entry in paper_values["values"]:
        source = entry["ours"]["source"]
        frame = sources.get(source)
        if source == "table2":
            rows += table2_rows(entry, frame, primary)
        elif source == "table3":
            rows += table3_rows(entry, frame, root / entry["file"])
        else:
            rows += figure_rows(entry, frame, source)
    return pd.DataFrame(rows, columns=COLUMNS)


def _number(value: float, percent: bool) -> str:
    return "–" if pd.isna(value) else f"{value:.2f}" if percent else f"{value:.4f}"


def _section(table: pd.DataFrame, title: str) -> str:
    percent = table["source"].eq("table2").all()
    lines = [f"## {title}", "", "| value | printed | claim | ours | interval | ours − paper | verdict | how / detail |",
             "|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples():
        interval = ("–" if row.verdict == "not run"
                    else f"[{_number(row.low, percent)}, {_number(row.high, percent)}] {row.interval}")
        difference = "–" if pd.isna(row.difference) else f"{row.difference:+.2f}" if percent else f"{row.difference:+.4f}"
        name = row.id.removesuffix(f"/{row.selection}") if row.selection else row.id
        lines.append(f"| {name} ({row.where}) | {row.printed} | {row.claim} | {_number(row.ours, percent)} | "
                     f"{interval} | {difference} | **{row.verdict}** | {row.detail} |")
    return "\n".join(lines) + "\n"


def markdown(table: pd.DataFrame, sources: dict[str, pd.DataFrame | None], paths: dict[str, str],
             primary: str) -> str:
    """The report: the sources read, the verdict counts of the primary rows, one section per table/figure."""
    counted = table[table["primary"]]
    counts = " · ".join(f"{verdict} {int((counted['verdict'] == verdict).sum())}" for verdict in VERDICTS)
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
        + "Built by `python -m revcurse.report fidelity` from the paper's printed values "
        "(`resources/paper_values.yaml`, `resources/paper_table3.csv`) and the pipeline's outputs; "
        "verdict rules: `docs/fidelity.md`. Table 2 is compared at the "
        f"**{primary}** selection; the other selection is shown below it and not counted.\n",
        f"Verdicts ({len(counted)} values): {counts}\n",
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
                parts.append(_section(part[part["selection"] == selection],
                                      f"{title}, {label}{' (compared)' if selection == primary else ''}"))
        elif not part.empty:
            parts.append(_section(part, title))
    return "\n".join(parts)
