"""Fidelity report: verdict logic on fixture frames, the resource file's sources, the CLI end to end."""
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


@pytest.mark.parametrize("claim, low, high, expected", [
    ("43.10", 38.0, 48.2, "agrees"),
    ("43.10", 43.10, 43.10, "agrees"),          # bounds included
    ("43.10", 12.0, 40.0, "differs"),
    ("0.00", 0.0, 0.0, "agrees"),               # every seed 0%: the seed interval is the point 0
    ("> 0", 0.05, 0.3, "agrees"),
    ("> 0", -0.1, 0.2, "inconclusive"),
    ("> 0", -0.3, 0.0, "differs"),
    ("> 0.6", 0.55, 0.61, "inconclusive"),
    ("≈ 0.999", 0.9986, 0.9994, "agrees"),      # inside [0.9985, 0.9995]: 0.999 to 3 decimals
    ("≈ 0.999", 0.9990, 0.9999, "inconclusive"),
    ("≈ 0.999", 0.9996, 0.9999, "differs"),
    ("≈ 0.999", 0.95, 0.97, "differs"),
    ("43.10", math.nan, math.nan, "not run"),
    ("> 0", None, None, "not run"),
])
def test_verdict(claim, low, high, expected):
    assert verdict(parse_claim(claim), low, high) == expected


# ---------------------------------------------------------------- fixtures
def entry(entry_id, printed, ours, claim=None):
    values = {"id": entry_id, "where": "fixture", "line": 1, "printed": printed, "ours": ours}
    return {**values, "claim": claim} if claim else values


def table2_frame():
    """MDM L = 10 with three seeds (seed interval), ARM L = 10 with one seed (Wilson only), final and best."""
    rows = []
    for selection, shift in (("final", 0.0), ("best", 20.0)):
        rows += [
            dict(L=10, model="mdm", direction="reverse", selection=selection, mean_pct=40.0 + shift,
                 seed_ci95_low_pct=30.0 + shift, seed_ci95_high_pct=50.0 + shift, ci95_low_pct=38.0 + shift,
                 ci95_high_pct=42.0 + shift, seeds="0 / 1 / 2", preset="test"),
            dict(L=10, model="arm", direction="forward", selection=selection, mean_pct=99.0,
                 seed_ci95_low_pct=np.nan, seed_ci95_high_pct=np.nan, ci95_low_pct=98.5, ci95_high_pct=99.4,
                 seeds="0", preset="test"),
        ]
    return pd.DataFrame(rows)


def by_id(table):
    return table.set_index("id")


def test_table2_rows_seed_interval_wilson_and_not_run():
    values = {"values": [
        entry("t2/mdm", "43.10", {"source": "table2", "L": 10, "model": "mdm", "direction": "reverse"}),
        entry("t2/arm", "99.83", {"source": "table2", "L": 10, "model": "arm", "direction": "forward"}),
        entry("t2/missing", "97.36", {"source": "table2", "L": 20, "model": "mdm", "direction": "forward"}),
    ]}
    table = by_id(fidelity.compare(values, {"table2": table2_frame()}))
    mdm = table.loc["t2/mdm/final"]
    assert (mdm.verdict, mdm.low, mdm.high, mdm.interval) == ("agrees", 30.0, 50.0, "seed t95 (n=3)")
    assert mdm.difference == pytest.approx(40.0 - 43.10) and mdm.primary
    best = table.loc["t2/mdm/best"]                          # 60 [50, 70]: shown, not the primary row
    assert best.verdict == "differs" and not best.primary
    arm = table.loc["t2/arm/final"]                          # one seed: the Wilson interval, 99.83 above it
    assert (arm.verdict, arm.low, arm.high) == ("differs", 98.5, 99.4) and arm.interval.startswith("Wilson")
    assert table.loc["t2/missing/final", "verdict"] == "not run"
    nothing = fidelity.compare(values, {"table2": None})
    assert set(nothing["verdict"]) == {"not run"} and len(nothing) == 2 * len(values["values"])


def test_table2_without_selection_column_is_final():
    values = {"values": [entry("t2", "43.10", {"source": "table2", "L": 10, "model": "mdm", "direction": "reverse"})]}
    old = table2_frame().query("selection == 'final'").drop(columns="selection")
    table = by_id(fidelity.compare(values, {"table2": old}, primary="best"))
    assert table.loc["t2/final", "verdict"] == "agrees" and not table.loc["t2/final", "primary"]
    assert table.loc["t2/best", "verdict"] == "not run" and table.loc["t2/best", "primary"]


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
    values = {"values": [entry(f"f3/L{length}", "consistent positive correlation",
                               {"source": "fig3", "model": "mdm", "length": length}, claim="> 0")
                         for length in (10, 20, 30, 40)]}
    table = by_id(fidelity.compare(values, {"fig3": correlation_frame()}))
    assert table["verdict"].to_dict() == {"f3/L10": "not run", "f3/L20": "agrees", "f3/L30": "inconclusive",
                                          "f3/L40": "differs"}
    half = 4.302653 * 0.1 / math.sqrt(3)                      # t(0.975, 2) · sd / √n
    assert table.loc["f3/L20", "ours"] == pytest.approx(0.5)  # step 0 (0.9) left out
    assert (table.loc["f3/L20", "low"], table.loc["f3/L20", "high"]) == pytest.approx((0.5 - half, 0.5 + half))
    assert "step 3000, 3 seed(s); 4 bins" in table.loc["f3/L20", "detail"]
    assert "0 above 0, 0 at or below, 4 straddling" in table.loc["f3/L30", "detail"]
    fig13 = correlation_frame().assign(panel="correlation")
    fig13 = pd.concat([fig13, fig13.assign(panel="weight", correlation=-1.0)])   # other panel ignored
    values13 = {"values": [{**v, "ours": {**v["ours"], "source": "fig13"}} for v in values["values"]]}
    assert by_id(fidelity.compare(values13, {"fig13": fig13}))["verdict"].equals(table["verdict"])


def cosine_curve_frame(level):
    """Fig. 4 CSV: the cosine per step (step 0 is 1 and is left out) and a probability panel."""
    steps = [0, 100, 200, 300]
    cosine = pd.DataFrame(dict(study="toy_attention_only", model="mdm", length=2, step=steps,
                               mean=[1.0] + [level] * 3, sd=0.0001, min=level, max=level, seeds=3, panel="cosine"))
    probability = cosine.assign(panel="probability", direction="forward", mean=0.2)
    return pd.concat([cosine, probability], ignore_index=True)


@pytest.mark.parametrize("level, expected", [(0.9991, "agrees"), (0.9, "differs"), (0.9995, "inconclusive")])
def test_cosine_curve_rows(level, expected):
    values = {"values": [entry("f4", "near 0.999", {"source": "fig4", "model": "mdm"}, claim="≈ 0.999")]}
    row = by_id(fidelity.compare(values, {"fig4": cosine_curve_frame(level)})).loc["f4"]
    assert row.verdict == expected and row.ours == pytest.approx(level)
    assert "3 steps 100…300" in row.detail


def test_cosine_box_rows():
    box = pd.DataFrame(dict(study="toy", model="mdm", length=[10, 20, 30], values=100, mean=[0.9, 0.6, 0.3],
                            std=0.1, min=0.1, q25=[0.8, 0.5, 0.2], median=0.5, q75=[0.95, 0.7, 0.4], max=1.0,
                            panel="cosine"))
    values = {"values": [entry(f"f5/L{length}", "remains above 0.6",
                               {"source": "fig5", "model": "mdm", "length": length}, claim="> 0.6")
                         for length in (10, 20, 30, 40)]}
    table = by_id(fidelity.compare(values, {"fig5": box}))
    assert table["verdict"].tolist() == ["agrees", "inconclusive", "differs", "not run"]
    assert (table.loc["f5/L10", "low"], table.loc["f5/L10", "high"]) == (0.8, 0.95)


def test_table3_rows_accept_the_printed_precision(tmp_path):
    printed = tmp_path / "printed.csv"
    printed.write_text("# Table 3 fixture\ndelta,num_planes,threshold,printed_bound\n"
                       "10,64,0.05,0.977\n10,64,0.10,0.978\n10,64,0.15,0.975\n20,64,0.05,0.900\n")
    computed = pd.DataFrame(dict(delta=[10, 10, 10], num_planes=64, threshold=[0.05, 0.1, 0.15],
                                 cantelli_bound=[0.97762, 0.97762, 0.97762]))
    values = {"values": [{"id": "t3", "where": "fixture", "line": 1, "file": "printed.csv", "ours": {"source": "table3"}}]}
    table = fidelity.compare(values, {"table3": computed}, root=tmp_path)
    # truncated and rounded both agree; 0.975 is two thousandths off; Δ = 20 is not computed
    assert table["verdict"].tolist() == ["agrees", "agrees", "differs", "not run"]
    assert table["printed"].tolist() == ["0.977", "0.978", "0.975", "0.900"]     # as printed, trailing zeros kept
    assert set(fidelity.compare(values, {"table3": None}, root=tmp_path)["verdict"]) == {"not run"}


# ---------------------------------------------------------------- the resource file
def test_every_value_names_its_source():
    document = fidelity.load_paper_values(VALUES)
    for item in document["values"]:
        assert item["where"].strip() and isinstance(item["line"], int) and item["line"] > 0, item["id"]
        assert ("printed" in item) != ("file" in item), item["id"]
        assert item["ours"]["source"] in fidelity.SOURCES, item["id"]
    table2 = [item for item in document["values"] if item["ours"]["source"] == "table2"]
    cells = {(i["ours"]["L"], i["ours"]["model"], i["ours"]["direction"]) for i in table2}
    assert len(table2) == len(cells) == 16      # Table 2: L = 10…40 × MDM/ARM × forward/reverse
    assert {i["ours"]["source"] for i in document["values"]} == set(fidelity.SOURCES)
    for item in document["values"]:
        if "file" in item:                      # Table 3: the printed values stay in their own file
            text = (ROOT / item["file"]).read_text()
            assert text.startswith("# Table 3 of the paper"), item["file"]


def test_load_paper_values_rejects_an_entry_without_source(tmp_path):
    bad = tmp_path / "values.yaml"
    bad.write_text(yaml.safe_dump({"values": [{"id": "x", "printed": "1.0", "ours": {"source": "table2"}}]}))
    with pytest.raises(ValueError, match="lacks"):
        fidelity.load_paper_values(bad)


def test_printed_values_are_on_the_lines_they_name():
    document = yaml.safe_load(VALUES.read_text())
    text = PAPER_DIR / document["paper"]["text"]
    if not text.exists():
        pytest.skip(f"paper text not at {text}")
    lines = text.read_text().splitlines()
    for item in document["values"]:
        if "printed" in item:
            assert item["printed"] in lines[item["line"] - 1], item["id"]
        else:                                   # Table 3: every printed bound in the table below its caption
            table = "\n".join(lines[item["line"] - 1:item["line"] + 10])
            printed = pd.read_csv(ROOT / item["file"], comment="#", dtype={"printed_bound": str})
            assert all(value in table for value in printed["printed_bound"]), item["id"]


# ---------------------------------------------------------------- command line
def test_cli_writes_report_with_missing_sources_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)                     # the resource file names resources/paper_table3.csv
    table2 = tmp_path / "table2.csv"
    table2_frame().to_csv(table2, index=False)
    csv, md = tmp_path / "fidelity.csv", tmp_path / "fidelity.md"
    cli(["fidelity", "--paper-values", str(VALUES), "--source", f"table2={table2}",
         "--source", f"fig3={tmp_path / 'absent.csv'}", "--config-hash", "abc", "--csv", str(csv), "--md", str(md)])
    table = pd.read_csv(csv, keep_default_na=False)
    assert list(table.columns) == fidelity.COLUMNS + ["config_hash", "code_version"]
    assert table["config_hash"].eq("abc").all() and table["code_version"].str.len().gt(0).all()
    rows = table.set_index("id")
    assert rows.loc["table2/L10/mdm/reverse/final", "verdict"] == "agrees"
    assert rows.loc["table2/L10/arm/forward/final", "verdict"] == "differs"
    assert rows.loc["table2/L40/mdm/reverse/final", "verdict"] == "not run"
    assert (table[table["source"].isin(["fig3", "fig4", "fig5", "fig13", "table3"])]["verdict"] == "not run").all()
    report = md.read_text()
    assert "agrees 1 · differs 1 · inconclusive 0 · not run" in report
    assert "fig3: not run" in report and "table3: not run (not built yet)" in report
    assert "Table 2, best over training" in report


def test_a_source_pooling_several_code_versions_lists_each_once():
    from revcurse.core.io import listed_values
    assert listed_values(pd.Series(["b, a", "a", None, "c, b"])) == ["a", "b", "c"]
