"""Are two runs' tables and figure values the same numbers? For a change that must not move any result
(a refactor, a layout move): every CSV of BEFORE's results/<preset>/ and figures/ against AFTER's, exactly,
leaving out the provenance columns (code version, config hashes), which a new commit changes.

    python scripts/compare_outputs.py BEFORE/results/quick AFTER/results/quick
"""
import sys
from pathlib import Path

import pandas as pd

PROVENANCE = ["code_version", "code_versions", "config_hash", "train_config_hash"]


def main(before: Path, after: Path) -> int:
    differ = 0
    files = sorted(before.glob("*.csv")) + sorted(before.glob("figures/*.csv"))
    for path in files:
        other = after / path.relative_to(before)
        if not other.exists():
            print(f"missing  {other}")
            differ += 1
            continue
        a, b = (pd.read_csv(p).drop(columns=PROVENANCE, errors="ignore") for p in (path, other))
        try:
            pd.testing.assert_frame_equal(a, b, check_exact=True)
            print(f"same     {path.relative_to(before)} {a.shape[0]} rows x {a.shape[1]} columns")
        except AssertionError as error:
            print(f"differs  {path.relative_to(before)}: {str(error).splitlines()[0]}")
            differ += 1
    print(f"{len(files) - differ} of {len(files)} files the same")
    return 1 if differ or not files else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
