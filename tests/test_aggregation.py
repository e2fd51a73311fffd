"""Table 2 from per-run evaluation rows: pooled means, intervals and the Markdown header."""
import pandas as pd

from revcurse.aggregation import table2, table2_markdown
from revcurse.data.toy import N_LETTERS


def evaluation_rows(model: str, length: int, seed: int, forward: int, reverse: int) -> list[dict]:
    """One run's per-letter rows with ``forward``/``reverse`` successes out of 10 per letter."""
    settings = dict(model=model, length=length, seed=seed, samples=10, top_k=3, unmask_order="random",
                    weights="ema", preset="quick", code_version="abc")
    return [dict(settings, letter=letter, direction=direction, successes=successes)
            for letter in range(N_LETTERS)
            for direction, successes in (("forward", forward), ("reverse", reverse))]


def test_means_pool_the_seeds_and_the_header_names_every_seed_that_ran():
    rows = (evaluation_rows("mdm", 6, 0, 10, 4) + evaluation_rows("mdm", 6, 1, 10, 6)
            + evaluation_rows("mdm", 8, 0, 9, 2))                       # L = 8 is missing seed 1
    table = table2(pd.DataFrame(rows)).assign(config_hash="h1")
    reverse = table.set_index(["L", "direction"]).loc[(6, "reverse")]
    assert reverse["mean_pct"] == 50.0 and reverse["per_seed_pct"] == "40.00 / 60.00"
    assert reverse["ci95_low_pct"] < 50.0 < reverse["ci95_high_pct"]
    header = table2_markdown(table).split("\n\n")[0]
    assert "mean over seeds 0, 0 / 1 " in header and "(10 per letter)" in header
