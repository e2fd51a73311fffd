"""Fidelity report: verdict logic on fixture frames, the resource file's sources, the CLI end to end."""
import copy
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from revcurse.report import fidelity
from revcurse.report.__main__ import main as cli
from revcurse.report.fidelity import Claim, parse_claim, verdict

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "resources" / "paper_values.yaml"
# The paper's text version, where the printed values are checked (skipped where it is absent).
PAPER_DIR = Path(os.environ.get("REVCURSE_PAPER_DIR", ROOT.parent / "shared" / "paper"))


# ---------------------------------------------------------------- claims and verdicts
@pytest.mark.parametrize("text, claim", [
    ("99.31", Claim("=", 99.31, 2)),
    ("0.00", Claim("=", 0.0, 2)),
    ("≈ 0.999", Claim("≈", 0.999, 3)),
    ("> 0.6", Claim(">", 0.6, 1)),
    ("> 0", Claim(">", 0.0, 0)),
])
def test_parse_claim(text, claim):
    assert parse_claim(text) == claim


@pytest.mark.parametrize("text", ["positive", "< 0.5", "", "0.9.9"])
def test_parse_claim_rejects(text):
    with pytest.raises(ValueError):
        parse_claim(text)


@pytest.mark.parametrize("claim, low, high, margin, expected", [
    ("99.83", 0.04, 0.17, 1.0, "agrees"),           # a 0.1-point gap on a success rate
    ("55.70", -43.1, -34.6, 1.0, "differs"),        # a 39-point gap
    ("43.10", -20.5, 23.6, 1.0, "inconclusive"),    # the interval spans the margin on both sides
    ("97.36", 0.5, 1.5, 1.0, "inconclusive"),       # ... or on one
    ("97.36", 1.01, 1.5, 1.0, "differs"),
    ("1.00", -1.0, 1.0, 1.0, "agrees"),             # bounds included
    ("0.00", 0.0, 0.0, 1.0, "agrees"),              # every seed 0%: no spread
    ("≈ 0.999", 0.0008, 0.0010, 0.05, "agrees"),
    ("≈ 0.999", -0.06, -0.052, 0.05, "differs"),
    ("> 0", 0.05, 0.3, 0.05, "agrees"),
    ("> 0", -0.04, -0.01, 0.05, "agrees"),          # below the threshold by less than the margin
    ("> 0.6", -0.1, 0.02, 0.05, "inconclusive"),
    ("> 0.6", -0.18, -0.18, 0.05, "differs"),       # a point (no interval) beyond the margin
    ("43.10", math.nan, math.nan, 1.0, "not run"),
    ("> 0", None, None, 0.05, "not run"),
])
def test_verdict(claim, low, high, margin, expected):
    assert verdict(parse_claim(claim), low, high, margin) == expected


# ---------------------------------------------------------------- fixtures
KINDS = {"table2": "success_rate", "table3": "bound", "fig3": "correlation", "fig13": "correlation",
         "fig4": "cosine", "fig5": "cosine"}
MARGINS = {"success_rate": {"margin": 1.0, "unit": "points", "why": "fixture"},
           "correlation": {"margin": 0.05, "why": "fixture"}, "cosine": {"margin": 0.05, "why": "fixture"},
           "bound": {"margin": 0.001, "why": "fixture"}}
T4 = 2.776445                                   # t(0.975, df 4), for five seeds


def entry(entry_id, printed, ours, claim=None, statistic=None):
    values = {"id": entry_id, "where": "fixture", "line": 1, "printed": printed, "kind": KINDS[ours["source"]],
              "ours": ours}
    return {**values, **({"claim": claim} if claim else {}), **({"statistic": statistic} if statistic else {})}


def document(*entries):
    return {"margins": copy.deepcopy(MARGINS), "paper_seeds": [{"source": "table2", "seeds": 3}], "values": list(entries)}


def table2_frame():
    """Five seeds: ARM forward 0.1 points above the paper, MDM reverse 39 below at L = 20 and +1.6 with a
    wide spread at L = 10; one seed: MDM forward L = 30 (Wilson only). Final and best rows."""
    rows = []
    for selection, shift in (("final", 0.0), ("best", 20.0)):
        rows += [dict(L=L, model=model, direction=direction, selection=selection, mean_pct=mean + shift,
                      seed_std_pct=sd, seed_ci95_low_pct=mean + shift - 1, seed_ci95_high_pct=mean + shift + 1,
                      ci95_low_pct=mean + shift - 0.5, ci95_high_pct=mean + shift + 0.5, seeds="0 / 1 / 2 / 3 / 4",
                      preset="test")
                 for L, model, direction, mean, sd in ((10, "arm", "forward", 79.93, 0.03),
                                                       (20, "mdm", "reverse", 16.84, 2.11),
                                                       (10, "mdm", "reverse", 44.66, 10.89))]
        rows.append(dict(L=30, model="mdm", direction="forward", selection=selection, mean_pct=94.0,
                         seed_std_pct=np.nan, seed_ci95_low_pct=np.nan, seed_ci95_high_pct=np.nan,
                         ci95_low_pct=93.5, ci95_high_pct=94.4, seeds="0", preset="test"))
    return pd.DataFrame(rows)


def by_id(table):
    return table.set_index("id")


TABLE2 = [entry("t2/arm", "79.83", {"source": "table2", "L": 10, "model": "arm", "direction": "forward"}),
          entry("t2/mdm20", "55.70", {"source": "table2", "L": 20, "model": "mdm", "direction": "reverse"}),
          entry("t2/mdm10", "43.10", {"source": "table2", "L": 10, "model": "mdm", "direction": "reverse"}),
          entry("t2/one", "96.91", {"source": "table2", "L": 30, "model": "mdm", "direction": "forward"}),
          entry("t2/missing", "97.36", {"source": "table2", "L": 40, "model": "mdm", "direction": "forward"})]


def test_table2_rows_carry_the_papers_noise_and_the_margin():
    table = by_id(fidelity.compare(document(*TABLE2), {"table2": table2_frame()}))
    arm = table.loc["t2/arm/final"]                          # 0.1 points above: within 1 point
    half = T4 * 0.03 * math.sqrt(1 / 5 + 1 / 3)              # our mean over 5 seeds − the paper's over 3
    assert arm.verdict == "agrees" and arm.primary and arm.margin == 1.0
    assert (arm.difference, arm.diff_low, arm.diff_high) == pytest.approx((0.1, 0.1 - half, 0.1 + half))
    assert (arm.low, arm.high, arm.interval) == (78.93, 80.93, "seed t95 (n=5)")
    assert table.loc["t2/mdm20/final", "verdict"] == "differs"          # 39 points below
    wide = table.loc["t2/mdm10/final"]                       # +1.6, but seeds spread by 11 points: spans ±1
    assert wide.verdict == "inconclusive" and wide.diff_low < -1 < 1 < wide.diff_high
    one = table.loc["t2/one/final"]                          # one seed: our Wilson interval alone
    assert (one.diff_low, one.diff_high) == pytest.approx((93.5 - 96.91, 94.4 - 96.91))
    assert one.verdict == "differs" and one.interval.startswith("Wilson") and "Wilson" in one.noise
    assert table.loc["t2/arm/best", "verdict"] == "differs" and not table.loc["t2/arm/best", "primary"]
    assert table.loc["t2/missing/final", "verdict"] == "not run"
    assert (table.loc["t2/mdm20/final", "artifact"], table.loc["t2/mdm20/best", "artifact"]) == (
        "Table 2, final step", "Table 2, best over training")
    assert (table.loc["t2/mdm20/final", "group"], table.loc["t2/mdm20/final", "cell"]) == ("MDM reverse", "L = 20")
    nothing = fidelity.compare(document(*TABLE2), {"table2": None})
    assert set(nothing["verdict"]) == {"not run"} and len(nothing) == 2 * len(TABLE2)


def test_table2_without_selection_column_is_final():
    old = table2_frame().query("selection == 'final'").drop(columns="selection")
    table = by_id(fidelity.compare(document(TABLE2[0]), {"table2": old}, primary="best"))
    assert table.loc["t2/arm/final", "verdict"] == "agrees" and not table.loc["t2/arm/final", "primary"]
    assert table.loc["t2/arm/best", "verdict"] == "not run" and table.loc["t2/arm/best", "primary"]


def correlation_frame(step_zero=True):
    """Fig. 3 CSV: L = 20 positive in every bin, L = 30 straddling 0, L = 40 negative; three seeds."""
    rows = []
    for length, level in ((20, 0.5), (30, 0.02), (40, -0.5)):
        for step in (0, 3000) if step_zero else (3000,):
            for distance in range(2, 6):
                rows.append(dict(study="toy", model="mdm", length=length, layer=0, head=0, step=step,
                                 distance_sum=distance, correlation=level if step else 0.9,
                                 correlation_sd=0.1, seeds=3, pairs=4.0, positive_share=1.0, bins=4))
    return pd.DataFrame(rows)


def test_correlation_rows_use_the_trained_step():
    values = document(*[entry(f"f3/L{length}", "consistent positive correlation",
                              {"source": "fig3", "model": "mdm", "length": length}, claim="> 0", statistic="bin_mean")
                        for length in (10, 20, 30, 40)])
    table = by_id(fidelity.compare(values, {"fig3": correlation_frame()}))
    assert table["verdict"].to_dict() == {"f3/L10": "not run", "f3/L20": "agrees", "f3/L30": "inconclusive",
                                          "f3/L40": "differs"}
    half = 4.302653 * 0.1 / math.sqrt(3)                      # t(0.975, 2) · sd / √n
    assert table.loc["f3/L20", "ours"] == pytest.approx(0.5)  # step 0 (0.9) left out
    assert (table.loc["f3/L20", "low"], table.loc["f3/L20", "high"]) == pytest.approx((0.5 - half, 0.5 + half))
    assert (table.loc["f3/L40", "diff_low"], table.loc["f3/L40", "diff_high"]) == pytest.approx((-0.5 - half, -0.5 + half))
    assert "step 3000, 3 seed(s); 4 bins" in table.loc["f3/L20", "detail"]
    assert "0 above 0, 0 at or below, 4 straddling" in table.loc["f3/L30", "detail"]
    fig13 = correlation_frame().assign(panel="correlation")
    fig13 = pd.concat([fig13, fig13.assign(panel="weight", correlation=-1.0)])   # other panel ignored
    values13 = document(*[{**v, "ours": {**v["ours"], "source": "fig13"}} for v in values["values"]])
    assert by_id(fidelity.compare(values13, {"fig13": fig13}))["verdict"].equals(table["verdict"])


def cosine_curve_frame(level, sd):
    """Fig. 4 CSV: the cosine per step (step 0 is 1 and is left out; ``level`` at step 200) and a probability panel."""
    steps = [0, 100, 200, 300]
    cosine = pd.DataFrame(dict(study="toy_attention_only", model="mdm", length=2, step=steps,
                               mean=[1.0, 0.9992, level, 0.9989], sd=sd, min=level, max=level, seeds=3, panel="cosine"))
    probability = cosine.assign(panel="probability", direction="forward", mean=0.2)
    return pd.concat([cosine, probability], ignore_index=True)


@pytest.mark.parametrize("level, sd, expected", [(0.9995, 0.0001, "agrees"), (0.9, 0.0001, "differs"),
                                                 (0.95, 0.01, "inconclusive")])
def test_cosine_curve_rows_read_the_farthest_step(level, sd, expected):
    values = document(entry("f4", "near 0.999", {"source": "fig4", "model": "mdm"}, claim="≈ 0.999",
                            statistic="worst_step"))
    row = by_id(fidelity.compare(values, {"fig4": cosine_curve_frame(level, sd)})).loc["f4"]
    farthest = level if abs(level - 0.999) > 0.0002 else 0.9992
    assert row.verdict == expected and row.ours == pytest.approx(farthest)
    assert "3 steps 100…300" in row.detail and row.statistic == fidelity.STATISTICS["worst_step"][2]


def box_frame():
    return pd.DataFrame(dict(study="toy", model="mdm", length=[10, 20, 30], values=100, mean=[0.9, 0.6, 0.3],
                             std=0.1, min=0.1, q25=[0.8, 0.45, 0.2], median=[0.85, 0.58, 0.3], q75=[0.95, 0.7, 0.4],
                             max=1.0, panel="cosine"))


@pytest.mark.parametrize("statistic, verdicts", [("median", ["agrees", "agrees", "differs", "not run"]),
                                                 ("q25", ["agrees", "differs", "differs", "not run"])])
def test_a_claims_statistic_is_the_one_its_entry_names(statistic, verdicts):
    values = document(*[entry(f"f5/L{length}", "remains above 0.6", {"source": "fig5", "model": "mdm", "length": length},
                              claim="> 0.6", statistic=statistic) for length in (10, 20, 30, 40)])
    table = by_id(fidelity.compare(values, {"fig5": box_frame()}))
    assert table["verdict"].tolist() == verdicts
    assert table["ours"].iloc[:3].tolist() == box_frame()[statistic].tolist()
    row = table.loc["f5/L20"]                                 # a point: no interval, the verdict reads it as it is
    assert row.low == row.high == row.ours and row.diff_low == row.diff_high == pytest.approx(row.ours - 0.6)
    assert row.statistic == fidelity.STATISTICS[statistic][2]


def test_table3_rows_accept_the_printed_precision(tmp_path):
    printed = tmp_path / "printed.csv"
    printed.write_text("# Table 3 fixture\ndelta,num_planes,threshold,printed_bound\n"
                       "10,64,0.05,0.977\n10,64,0.10,0.978\n10,64,0.15,0.975\n20,64,0.05,0.900\n")
    computed = pd.DataFrame(dict(delta=[10, 10, 10], num_planes=64, threshold=[0.05, 0.1, 0.15],
                                 cantelli_bound=[0.97762, 0.97762, 0.97762]))
    values = document({"id": "t3", "where": "fixture", "line": 1, "file": "printed.csv", "kind": "bound",
                       "ours": {"source": "table3"}})
    table = fidelity.compare(values, {"table3": computed}, root=tmp_path)
    # truncated and rounded both agree; 0.975 is two thousandths off; Δ = 20 is not computed
    assert table["verdict"].tolist() == ["agrees", "agrees", "differs", "not run"]
    assert table["printed"].tolist() == ["0.977", "0.978", "0.975", "0.900"]     # as printed, trailing zeros kept
    assert table["cell"].iloc[0] == "Δ=10, m=64, c=0.05" and set(table["artifact"]) == {"Table 3"}
    assert set(fidelity.compare(values, {"table3": None}, root=tmp_path)["verdict"]) == {"not run"}


def test_summary_and_paragraph_say_each_artifact_apart():
    values = document(*TABLE2, *[entry(f"f5/L{length}", "remains above 0.6",
                                       {"source": "fig5", "model": "mdm", "length": length},
                                       claim="> 0.6", statistic="median") for length in (10, 20, 30)])
    table = fidelity.compare(values, {"table2": table2_frame(), "fig5": box_frame()})
    units = {"success_rate": "points"}
    summary = fidelity.summary(table, units).set_index("artifact")
    assert list(summary.index) == ["Table 2, final step", "Table 2, best over training", "Figure 5"]
    final = summary.loc["Table 2, final step"]
    assert (final["values"], final["agrees"], final["differs"], final["inconclusive"], final["not run"]) == (5, 1, 2, 1, 1)
    assert final["ours − paper"] == "-38.86 to +1.56" and final["margin"] == "±1.00 points"
    assert summary.loc["Figure 5", "margin"] == "≥ −0.0500"
    text = fidelity.paragraph(table, units)
    lines = {line.split("**")[1]: line for line in text.splitlines()}
    assert ("Not reproduced: MDM reverse at L = 20 (ours − paper -38.86 points); MDM forward at L = 30 "
            "(ours − paper -2.91 points)") in lines["Table 2, final step"]
    assert "Undecided (the interval spans the margin): MDM reverse at L = 10 (ours − paper +1.56 points, interval -" \
        in lines["Table 2, final step"]
    assert lines["Figure 5"].startswith("- **Figure 5** (tested on the box's median): Reproduced: at L = 10, 20 "
                                        "(ours − paper -0.0200 to +0.2500). Not reproduced: at L = 30")


# ---------------------------------------------------------------- the resource file
def test_every_value_names_its_source_kind_and_statistic():
    document = fidelity.load_paper_values(VALUES)
    for item in document["values"]:
        assert item["where"].strip() and isinstance(item["line"], int) and item["line"] > 0, item["id"]
        assert ("printed" in item) != ("file" in item), item["id"]
        assert item["ours"]["source"] in fidelity.SOURCES, item["id"]
        assert document["margins"][item["kind"]]["why"].strip(), item["id"]
        if item["ours"]["source"].startswith("fig"):           # a figure claim names what it is tested on
            assert item["ours"]["source"] in fidelity.STATISTICS[item["statistic"]][0], item["id"]
    table2 = [item for item in document["values"] if item["ours"]["source"] == "table2"]
    cells = {(i["ours"]["L"], i["ours"]["model"], i["ours"]["direction"]) for i in table2}
    assert len(table2) == len(cells) == 16      # Table 2: L = 10…40 × MDM/ARM × forward/reverse
    assert {i["kind"] for i in table2} == {"success_rate"}
    assert {i["ours"]["source"] for i in document["values"]} == set(fidelity.SOURCES)
    for item in document["values"]:
        if "file" in item:                      # Table 3: the printed values stay in their own file
            text = (ROOT / item["file"]).read_text()
            assert text.startswith("# Table 3 of the paper"), item["file"]
            printed = pd.read_csv(ROOT / item["file"], comment="#", dtype={"printed_bound": str})["printed_bound"]
            decimals = {len(value.split(".")[1]) for value in printed}      # the margin is one unit of that digit
            assert [10.0 ** -d for d in decimals] == [document["margins"][item["kind"]]["margin"]]


@pytest.mark.parametrize("change, message", [
    (lambda d: d["values"][0].pop("where"), "lacks"),
    (lambda d: d["values"][0].update(kind="speed"), "has no margin"),
    (lambda d: d["margins"]["cosine"].pop("why"), "its reason"),
    (lambda d: d["values"][1].update(statistic="median"), "statistic must be one of"),
    (lambda d: d["values"][1].pop("statistic"), "statistic must be one of"),
    (lambda d: d.pop("paper_seeds"), "needs the seeds the paper averages"),
])
def test_load_paper_values_rejects_a_malformed_entry(tmp_path, change, message):
    good = document(entry("t2", "43.10", {"source": "table2", "L": 10, "model": "mdm", "direction": "reverse"}),
                    entry("f3", "positive", {"source": "fig3", "model": "mdm", "length": 20}, claim="> 0",
                          statistic="bin_mean"))
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(good, allow_unicode=True))
    fidelity.load_paper_values(path)
    change(good)
    path.write_text(yaml.safe_dump(good, allow_unicode=True))
    with pytest.raises(ValueError, match=message):
        fidelity.load_paper_values(path)


def test_printed_values_are_on_the_lines_they_name():
    document = yaml.safe_load(VALUES.read_text())
    text = PAPER_DIR / document["paper"]["text"]
    if not text.exists():
        pytest.skip(f"paper text not at {text}")
    lines = text.read_text().splitlines()
    for item in document["values"] + document["paper_seeds"]:
        if "printed" in item:
            assert item["printed"] in lines[item["line"] - 1], item.get("id", item)
        else:                                   # Table 3: every printed bound in the table below its caption
            table = "\n".join(lines[item["line"] - 1:item["line"] + 10])
            printed = pd.read_csv(ROOT / item["file"], comment="#", dtype={"printed_bound": str})
            assert all(value in table for value in printed["printed_bound"]), item["id"]
    for item in document["paper_seeds"]:        # the seed count is the one printed
        assert f"{item['seeds']} random seeds" in item["printed"]


# ---------------------------------------------------------------- command line
def markdown_table(text: str, heading: str) -> pd.DataFrame:
    """The first Markdown table after ``heading`` in ``text``, as strings."""
    rows = [line for line in text.split(heading, 1)[1].strip().splitlines()]
    rows = [row for row in rows[:next((i for i, r in enumerate(rows) if not r.startswith("|")), len(rows))]]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    return pd.DataFrame(cells[2:], columns=cells[0])


def test_cli_writes_report_with_missing_sources_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)                     # the resource file names resources/paper_table3.csv
    table2 = tmp_path / "table2.csv"
    frame = table2_frame()
    frame.loc[frame["L"] == 30, "L"] = 40       # the one-seed cell at L = 40
    frame.to_csv(table2, index=False)
    csv, md = tmp_path / "fidelity.csv", tmp_path / "fidelity.md"
    cli(["fidelity", "--paper-values", str(VALUES), "--source", f"table2={table2}",
         "--source", f"fig3={tmp_path / 'absent.csv'}", "--config-hash", "abc", "--csv", str(csv), "--md", str(md)])
    table = pd.read_csv(csv, keep_default_na=False)
    assert list(table.columns) == fidelity.COLUMNS + ["config_hash", "code_version"]
    assert table["config_hash"].eq("abc").all() and table["code_version"].str.len().gt(0).all()
    rows = table.set_index("id")
    assert rows.loc["table2/L20/mdm/reverse/final", "verdict"] == "differs"
    assert rows.loc["table2/L10/mdm/reverse/final", "verdict"] == "inconclusive"
    assert rows.loc["table2/L30/mdm/forward/final", "verdict"] == "not run"
    assert (table[table["source"].isin(["fig3", "fig4", "fig5", "fig13", "table3"])]["verdict"] == "not run").all()
    report = md.read_text()
    assert report.index("## Summary per artifact") < report.index("## What reproduced") < report.index("Sources:")
    # the summary's counts are the CSV's, artifact by artifact
    summary = markdown_table(report, "## Summary per artifact").set_index("artifact")[list(fidelity.VERDICTS)].astype(int)
    counts = pd.crosstab(table["artifact"], table["verdict"]).reindex(columns=list(fidelity.VERDICTS), fill_value=0)
    pd.testing.assert_frame_equal(summary, counts.reindex(summary.index), check_names=False)
    assert summary.loc["Table 3", "not run"] == 60 and summary.loc["Table 2, final step"].sum() == 16
    assert "fig3: not run" in report and "table3: not run (not built yet)" in report
    assert "## Table 2, best over training" in report


def test_a_source_pooling_several_code_versions_lists_each_once():
    from revcurse.core.io import listed_values
    assert listed_values(pd.Series(["b, a", "a", None, "c, b"])) == ["a", "b", "c"]
