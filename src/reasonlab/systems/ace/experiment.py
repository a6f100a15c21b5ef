"""Small-scale ACE reproduction on CPU: oracle-Reflector run, real-model run, endpoint run, quick demo.

    python -m reasonlab.systems.ace.experiment oracle   --llm llamacpp:embedded --out runs/ace-experiment
    python -m reasonlab.systems.ace.experiment model    --llm llamacpp:embedded --out runs/ace-experiment
    python -m reasonlab.systems.ace.experiment endpoint --llm openai:http://127.0.0.1:8000/v1#gemma
    reasonlab demo --only ace                                                       # quick version

Each arm is one `adapt` run of the same task, seed and sizes: ACE (playbook + deterministic merge) and the
full-rewrite baseline (Dynamic Cheatsheet, cumulative), both seeded with reference facts that the stream
never teaches, so that retention measures collapse; the no-context score is the test score before adapting.
The oracle run replaces the Reflector by a script that states the true rule (the Generator and Curator are
still the LLM), so it measures the merge and the Curator, not the small model's insight.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reasonlab.demo import register_demo
from reasonlab.runs import Run

__all__ = ["PRESETS", "QUICK", "run_arms", "summarize"]

_ROLES = {"retries": 2, "max_tokens": 160, "field_chars": 60, "content_chars": 80, "max_operations": 1,
          "max_citations": 2}
# one llama.cpp thread: on a CPU shared with other jobs, 2 threads were 7x slower than 1 (spin-waiting)
# 4 invented metrics; 2 training and 2 test questions per metric; no validation split (each evaluation costs
# as much as the adaptation itself at this scale; best-by-validation is covered by the tests)
_FORMULA = {"task": "formula", "seed_facts": True, "reflector_rounds": 1, "eval_steps": 100, "dedup": True,
            "rewrite_chars": 400, "token_budget": 1500, "train_size": 8, "val_size": 0, "test_size": 8,
            "roles": _ROLES, "n_threads": 1}
PRESETS: dict[str, dict[str, Any]] = {
    "oracle": {**_FORMULA, "oracle_reflector": True},
    "model": {**_FORMULA, "task_options": {"families": 3}, "train_size": 6, "test_size": 6},
    # the served hf backend was ~10x slower than in-process llama.cpp on the shared CPU: the smallest run
    "endpoint": {**_FORMULA, "task_options": {"families": 2}, "train_size": 2, "test_size": 2},
    "tools": {**_FORMULA, "task": "tools", "oracle_reflector": True, "train_size": 3, "test_size": 6},
}
# about 14 LLM calls: 2 invented metrics, one training and one test question each, no retry rounds
QUICK: dict[str, Any] = {**PRESETS["oracle"], "task_options": {"families": 2}, "train_size": 2, "test_size": 2,
                         "reflector_rounds": 0, "rewrite_chars": 200}


def run_arms(preset: dict[str, Any], llm_spec: str, out: Path, tag: str, arms: tuple[str, ...] = ("ace", "dc"),
             llm: Any = None) -> Path:
    """Run each arm with one loaded model (usage counted per arm); write a comparison summary."""
    from reasonlab.llm import load_llm
    from reasonlab.llm.base import Usage
    from reasonlab.systems.ace.adapt import ACEConfig, run_adaptation

    threads = preset.get("n_threads")
    llm = llm or load_llm(llm_spec, **({"n_threads": threads} if llm_spec.startswith("llamacpp") and threads else {}))
    results = {}
    for arm in arms:
        llm.usage = Usage()
        config = ACEConfig(**{**preset, "llm": llm_spec, "method": arm, "out": str(out), "name": f"{tag}-{arm}",
                              "eval_before": arm == arms[0]})
        run_dir = run_adaptation(config, llm=llm)
        results[arm] = json.loads((run_dir / "summary.json").read_text())
    run = Run.create(out, f"{tag}-comparison", {"preset": preset, "llm": llm_spec, "arms": list(arms)}, exist_ok=True)
    summary = summarize(results)
    run.write_summary(summary)
    return run.dir


def summarize(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One row per arm: accuracy, context size over steps, collapse, retention, cost."""
    first = next(iter(results.values()))
    rows = {}
    for arm, s in results.items():
        rows[arm] = {
            "test_accuracy": s["test_after"]["accuracy"], "parse_rate": s["test_after"]["parse_rate"],
            "context_tokens": s["context_tokens"], "max_shrink": s["max_shrink"],
            "collapse_events": s["collapse_events"], "facts_seeded": s["facts_seeded"],
            "facts_retained_final": s["facts_retained"][-1], "adapt_usage": s["adapt_usage"],
            "adapt_seconds": s["adapt_seconds"], "failures": s["failures"],
        }
    return {"no_context_test_accuracy": (first.get("test_before") or {}).get("accuracy"), "arms": rows}


@register_demo("ace", "ACE vs full-rewrite memory on invented formulas (oracle Reflector, llamacpp Gemma-270M)")
def quick(run_root: Path) -> Path:
    return run_arms(QUICK, "llamacpp:embedded", Path(run_root), "ace-quick")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", choices=sorted(PRESETS), help="which experiment")
    parser.add_argument("--llm", default="llamacpp:embedded", help="model spec")
    parser.add_argument("--out", default="runs/ace-experiment", help="root folder of runs")
    parser.add_argument("--arms", default="ace,dc", help="comma-separated methods: ace, dc, icl, none")
    parser.add_argument("--tag", default=None, help="run name prefix (default: the preset)")
    args = parser.parse_args()
    run_dir = run_arms(PRESETS[args.preset], args.llm, Path(args.out), args.tag or args.preset,
                       tuple(args.arms.split(",")))
    print(json.dumps(json.loads((run_dir / "summary.json").read_text()), indent=1))


if __name__ == "__main__":
    main()
