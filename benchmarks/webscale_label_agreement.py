"""The Webscale-RL checker against the hand-labelled fixture: grounding precision and recall, leakage flagged and
left, self-containedness, over all rows and per generator (the checker runs on the passage each generator saw).

    .venv/bin/python benchmarks/webscale_label_agreement.py --json runs/webscale-labels/agreement.json

The fixture and how it was made: tests/systems/webscale_rl/fixtures/labelled_qa.jsonl and
benchmarks/webscale_label_sample.py. tests/systems/webscale_rl/test_labelled_sample.py asserts the same numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reasonlab.runs import atomic_write_json

FIXTURE = Path(__file__).resolve().parent.parent / "tests/systems/webscale_rl/fixtures/labelled_qa.jsonl"


def share(row: dict[str, Any]) -> str:
    if not row["n"]:
        return "n/a (n=0)"
    return f"{row['k']}/{row['n']} = {100 * row['rate']:.1f}% (95% CI {100 * row['ci_low']:.1f}-{100 * row['ci_high']:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixture", type=Path, default=FIXTURE)
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here too")
    args = parser.parse_args()

    from reasonlab.llm.embed import load_embedder
    from reasonlab.systems.webscale_rl.config import CheckConfig
    from reasonlab.systems.webscale_rl.evaluation import labelled_sample_agreement

    rows = [json.loads(line) for line in args.fixture.read_text().splitlines() if line.strip()]
    result = labelled_sample_agreement(rows, CheckConfig(), load_embedder("minilm"))
    for name, agreement in [("all", result["all"]), *result["by_generator"].items()]:
        print(f"{name} (n={agreement['n']})")
        print(f"  grounding precision {share(agreement['grounding']['precision'])}, "
              f"recall {share(agreement['grounding']['recall'])}")
        print(f"  leakage by hand {share(agreement['leakage_before_check'])}, flagged "
              f"{share(agreement['leakage']['recall'])} of it (precision {share(agreement['leakage']['precision'])}); "
              f"left after the check "
              f"{share(agreement['leakage_after_check'])}")
        print(f"  self-contained: checker precision {share(agreement['self_contained']['precision'])}")
        print(f"  accepted {share(agreement['accepted'])}; ungrounded among them "
              f"{share(agreement['ungrounded_after_check'])}")
    if args.json is not None:
        atomic_write_json(args.json, {"fixture": str(args.fixture.name), "rows": len(rows), **result})
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
