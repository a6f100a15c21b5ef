"""Small-scale mem-agent reproduction on CPU: the md-memory-bench-style mini benchmark.

    reasonlab memagent bench --preset mini --out runs/memagent          # the run of record
    reasonlab demo --only memagent                                       # the quick preset

Arms, all on the same generated tasks: `oracle` and `wrong` (scripted policies through the real agent loop and
sandbox: they prove the scorer gives 100% and 0%), `agent` (the LLM as the memory agent), `rag` (MiniLM top-k
chunks + one LLM answer) and `judge` (the LLM as a CORRECT/INCORRECT judge, scored against the hand labels
beside the deterministic judges). The experiment is one run directory: every judged task in metrics.jsonl,
and a summary.json with each arm's score as mean, spread and n over the generator seeds, the per-seed
reports, the judges' agreement and the RL reward table. RL training is `reasonlab memagent train`
(training.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reasonlab.demo import register_demo
from reasonlab.errors import UserError
from reasonlab.runs import Run, atomic_write_text
from reasonlab.systems.memagent.config import PRESETS, ExperimentConfig

__all__ = ["run_experiment"]


def _load(config: ExperimentConfig) -> Any:
    from reasonlab.llm import load_llm

    threads = config.n_threads
    return load_llm(config.llm, **({"n_threads": threads} if config.llm.startswith("llamacpp") and threads else {}))


def _solver(arm: str, llm: Any, config: ExperimentConfig, embedder: Any) -> Any:
    from reasonlab.systems.memagent.evaluation import AgentSolver, scripted_policy
    from reasonlab.systems.memagent.rag import RAGSolver

    if arm in ("oracle", "wrong"):
        # a scripted policy's "tokens" are characters: lift the per-turn budget, keep the loop as it is
        scripted = config.agent.model_copy(update={"max_tokens_per_turn": 4096,
                                                   "max_turns": max(config.agent.max_turns, 5)})
        return AgentSolver(policy_for_task=lambda task: scripted_policy(task, arm == "oracle"), config=scripted,
                           name=arm)
    if arm == "agent":
        return AgentSolver(llm, config.agent)
    return RAGSolver(llm, embedder, k=config.rag_k)


def run_experiment(config: ExperimentConfig, out: str | Path, name: str, *, resume: bool = False,
                   overwrite: bool = False, llm: Any = None, embedder: Any = None) -> Path:
    """Run each arm on the same tasks per seed; log every judged task; summarise scores, cost and judges.

    The benchmark keeps no checkpoint: `resume` reuses a finished run of the same config."""
    from reasonlab.systems.memagent.data import generate_bench
    from reasonlab.systems.memagent.environment import reward_table
    from reasonlab.systems.memagent.evaluation import mean_spread, run_bench
    from reasonlab.systems.memagent.judges import LLMJudge, agreement, judge_case, load_hand_labels

    run_dir = Path(out) / name
    if resume:
        Run.require_existing(run_dir)
        if not (run_dir / "summary.json").is_file():
            raise UserError(f"--resume: the run {run_dir} stopped before it finished, and the benchmark has no "
                            f"checkpoint: pass --overwrite to run it again")
        Run.create(out, name, config, resume=True)  # refuses another config
        print(f"reusing the finished benchmark in {run_dir}")
        return run_dir
    run = Run.create(out, name, config, overwrite=overwrite)
    if llm is None and set(config.arms) & {"agent", "rag", "judge"}:
        llm = _load(config)
    labels = load_hand_labels()
    per_seed: dict[int, dict[str, Any]] = {}
    tasks_text = []
    for seed in config.seeds:
        memories, tasks = generate_bench(seed, config.memories, config.tasks_per_category)
        tasks_text += [json.dumps({"seed": seed, **t.to_dict()}) + "\n" for t in tasks]
        per_seed[seed] = {}
        for arm in config.arms:
            if arm == "judge":
                continue
            before = llm.usage.calls if llm is not None else 0
            report = run_bench(tasks, memories, _solver(arm, llm, config, embedder), progress=True,
                               on_task=lambda o, arm=arm, seed=seed: run.log({"kind": "task", "arm": arm,
                                                                              "seed": seed, **o.to_dict()}))
            per_seed[seed][arm] = report.summary
            if arm in ("agent", "rag"):
                per_seed[seed][arm]["llm_calls"] = llm.usage.calls - before
    atomic_write_text(run.dir / "tasks.jsonl", "".join(tasks_text))
    judges = {"deterministic": agreement(labels, judge_case)}
    if "judge" in config.arms:
        judges["llm"] = agreement(labels, LLMJudge(llm).judge)
    arms = {arm: {"score": mean_spread([per_seed[s][arm]["score"] for s in config.seeds])}
            for arm in config.arms if arm != "judge"}
    run.write_summary({"llm": config.llm, "tasks_per_seed": 4 * config.tasks_per_category, "arms": arms,
                       "per_seed": per_seed, "judge_agreement": judges, "reward_table": reward_table()})
    return run.dir


@register_demo("memagent", "mem-agent mini-bench: scripted oracle/wrong, Gemma-270M agent and MiniLM-RAG (llamacpp)")
def quick(run_root: Path) -> Path:
    config = PRESETS["quick"].model_copy(update={"arms": ["oracle", "wrong", "agent", "rag"]})
    return run_experiment(config, Path(run_root), "memagent-quick", overwrite=True)


if __name__ == "__main__":  # a thin alias of `reasonlab memagent ...` (bench, train)
    import sys

    from reasonlab.cli import main

    sys.argv[1:1] = ["memagent"]
    main()
