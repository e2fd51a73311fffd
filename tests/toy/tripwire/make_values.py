"""Write the tripwire's stored values (tests/toy/test_tripwire.py): one JSON per case of tests/helpers/tripwire.py.

    python tests/toy/tripwire/make_values.py [CASE ...]     # all cases by default

Run it only for a deliberate change of the training arithmetic, and commit the values with a message that
says why: runs made before it (the shipped reference's, reference/paper/runs/) no longer regenerate.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # tests/, for helpers/
from helpers.tripwire import CASES, VALUES, make_values  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("cases", nargs="*", metavar="CASE", help=f"default: all of {', '.join(CASES)}")
cases = parser.parse_args().cases or list(CASES)
if set(cases) - set(CASES):
    parser.error(f"unknown case(s) {sorted(set(cases) - set(CASES))}; expected some of {', '.join(CASES)}")
for case in cases:
    values = make_values(case)
    (VALUES / f"{case}.json").write_text(json.dumps(values, indent=1) + "\n")
    print(f"{case}: loss at step {values['steps']} {values['losses'][-1]!r}, weights {values['raw_sha256'][:16]}")
