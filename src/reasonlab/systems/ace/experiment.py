"""Small-scale ACE reproduction on CPU: ACE against the full-rewrite baseline, on the same task, per seed.

    reasonlab ace experiment --preset mini --out runs/ace-experiment          # the run of record
    reasonlab ace experiment --preset oracle --llm llamacpp:embedded --out runs/ace-experiment
    reasonlab demo --only ace                                                  # the quick preset

Each arm is one `adapt` run of the same task, seed and sizes: ACE (playbook + deterministic merge) and the
full-rewrite baseline (Dynamic Cheatsheet, cumulative), both seeded with reference facts that the stream
never teaches, so that retention measures collapse; the no-context score is the test score before adapting.
With `oracle_reflector` the Reflector is a script that states the true rule (the Generator and Curator are
still the LLM), so the run measures the merge and the Curator, not the small model's insight.

The experiment is a run directory (config.yaml, summary.json with each arm's mean, spread and n over seeds);
each adaptation is a run below it, in `arms/<arm>-seed<k>/`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reasonlab.demo import register_demo
from reasonlab.runs import Run
from reasonlab.systems.ace.config import PRESETS, ACEConfig, ExperimentConfig

__all__ = ["run_experiment"]


def run_experiment(config: ExperimentConfig, out: str | Path, name: str, *, resume: bool = False,
                   overwrite: bool = False, llm: Any = None) -> Path:
    """Adapt every arm on every seed with one loaded model (usage counted per run); write the comparison.

    With `resume`, finished adaptations are reused and an unfinished one is started again."""
    from reasonlab.llm import load_llm
    from reasonlab.llm.base import Usage
    from reasonlab.systems.ace.adaptation import run_adaptation
    from reasonlab.systems.ace.evaluation import compare_arms

    if resume:
        Run.require_existing(Path(out) / name)
    run = Run.create(out, name, config, resume=resume, overwrite=overwrite)
    settings = config.adaptation
    if llm is None:
        threads = settings.n_threads
        llm = load_llm(settings.llm, **({"n_threads": threads} if settings.llm.startswith("llamacpp") and threads
                                        else {}))
    results: dict[str, dict[int, dict[str, Any]]] = {arm: {} for arm in config.arms}
    for seed in config.seeds:
        for arm in config.arms:
            llm.usage = Usage()
            arm_config = ACEConfig(**settings.model_dump(), method=arm, seed=seed)
            arm_config.eval_before = settings.eval_before and arm == config.arms[0]
            arm_name = f"{arm}-seed{seed}"
            finished = (run.dir / "arms" / arm_name / "summary.json").is_file()
            print(f"ace experiment: {arm} on seed {seed}")
            arm_dir = run_adaptation(arm_config, run.dir / "arms", arm_name, resume=resume and finished,
                                     overwrite=not finished, llm=llm)
            results[arm][seed] = json.loads((arm_dir / "summary.json").read_text())
    run.write_summary(compare_arms(results))
    return run.dir


@register_demo("ace", "ACE vs full-rewrite memory on invented formulas (oracle Reflector, llamacpp Gemma-270M)")
def quick(run_root: Path) -> Path:
    return run_experiment(PRESETS["quick"], Path(run_root), "ace-quick", overwrite=True)


if __name__ == "__main__":  # a thin alias of `reasonlab ace experiment`
    import sys

    from reasonlab.cli import main

    sys.argv[1:1] = ["ace", "experiment"]
    main()
