"""mem-agent mini benchmark (md-memory-bench style) on CPU: per-category scores, format statistics and cost of
the memory agent, a MiniLM-RAG baseline and the scripted oracle / wrong policies, plus the agreement of the
deterministic judges and of the LLM as a judge with the hand labels, and the RL reward table.

    .venv/bin/python benchmarks/memagent_bench.py --llm llamacpp:embedded --out runs/memagent-bench

Tasks: `generate_bench(seed=0, n_memories=2, tasks_per_category=5)`, 20 tasks (5 retrieval 0/1/2-hop, 5 explicit
updates, 5 clarifications, 5 filters). Agent: `AgentConfig(max_turns=4, max_tokens_per_turn=48)`, greedy,
few-shot prompt, unconstrained unless --constrained (TURN_GRAMMAR costs 3.5x per token in llama.cpp); updates are judged on the memory after plus a fresh agent's answer
to a follow-up question. RAG: 4-line chunks of every file, MiniLM top-3, one greedy answer of at most 48 tokens.
The oracle and wrong arms are ScriptedLLMs run through the same agent loop and sandbox.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from reasonlab.systems.memagent.experiment import ARMS, PRESETS, run_experiment

COLUMNS = ("retrieval", "update", "clarification", "filter")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def table(summary: dict) -> str:
    """The markdown rows RESULTS.md quotes: one per arm, then the judges' agreement."""
    lines = ["| arm | " + " | ".join(COLUMNS) + " | all | format-valid | ast.parse | tool errors | turns/ep | "
             "prompt+completion tokens | s/task |", "|---" * 11 + "|"]
    for arm, s in summary["arms"].items():
        scores = " | ".join(f"{s['categories'][c]['score']:.2f}" for c in COLUMNS)
        lines.append(f"| {arm} | {scores} | **{s['score']:.2f}** | {_pct(s['format_valid_rate'])} | "
                     f"{_pct(s['ast_parse_rate'])} | {_pct(s['tool_error_rate'])} | {s['turns_per_episode']:.1f} | "
                     f"{s['prompt_tokens']}+{s['completion_tokens']} | {s['seconds_per_task']:.1f} |")
    lines += ["", "| judge | agreement with 54 hand labels | kappa | retrieval | update | clarification | filter |",
              "|---|---|---|---|---|---|---|"]
    for judge, a in summary["judge_agreement"].items():
        per = " | ".join(f"{a['per_category'][c]:.2f}" for c in COLUMNS)
        lines.append(f"| {judge} | {a['accuracy']:.2f} | {a['kappa']:.2f} | {per} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm", default="llamacpp:embedded", help="model spec (llamacpp:embedded is fastest on CPU)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated: {', '.join(ARMS)}")
    parser.add_argument("--out", default="runs/memagent-bench", help="root folder of runs")
    parser.add_argument("--tag", default="mini", help="run name")
    parser.add_argument("--constrained", action="store_true", help="force the turn format with TURN_GRAMMAR")
    args = parser.parse_args()
    preset = {**PRESETS["mini"], "agent": {**PRESETS["mini"]["agent"], "constrained": args.constrained}}
    run_dir = run_experiment(preset, args.llm, Path(args.out), args.tag, tuple(args.arms.split(",")))
    summary = json.loads((run_dir / "summary.json").read_text())
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}; llm {args.llm}")
    print(table(summary))
    print("reward table:", json.dumps(summary["reward_table"]))
    print(f"run: {run_dir}")


if __name__ == "__main__":
    main()
