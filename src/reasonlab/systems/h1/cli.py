"""`reasonlab h1 ...`: compose chains, train with the depth curriculum, evaluate per depth, the experiment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console

from reasonlab.errors import UserError

if TYPE_CHECKING:
    from reasonlab.systems.h1.experiment import ExperimentConfig

app = typer.Typer(help="h1: long-horizon RL from composed easy problems with a depth curriculum (arXiv 2510.07312).",
                  no_args_is_help=True)
console = Console()


@app.command("compose")
def compose_command(
    depth: int = typer.Option(3, help="h: problems per chain"),
    count: int = typer.Option(5, help="chains to write"),
    seed: int = typer.Option(0, help="sampling seed"),
    gsm8k: Optional[Path] = typer.Option(None, "--gsm8k", help="GSM8K-format JSONL of atoms (default: our templates)"),
    modular: bool = typer.Option(False, "--modular", help="modular state-tracking chains (the tinylm task)"),
    out: Optional[Path] = typer.Option(None, "--out", help="write JSONL here instead of printing the prompts"),
) -> None:
    """Build depth-h chains, each verified by the reference solver, as prompts or JSONL {prompt, answer, depth}."""
    from reasonlab.runs import atomic_write_text

    rows = _compose(depth, count, seed, gsm8k, modular)
    if out is not None:
        atomic_write_text(out, "".join(json.dumps(row) + "\n" for row in rows))
        console.print(f"wrote {len(rows)} depth-{depth} chains to {out}")
        return
    for row in rows:
        console.rule(f"depth {row['depth']}, answer {row['answer']}")
        console.print(row["prompt"], highlight=False, markup=False)


def _compose(depth: int, count: int, seed: int, gsm8k: Optional[Path], modular: bool) -> list[dict]:
    if modular:
        from reasonlab.systems.h1.modular import make_modular_chains

        chains = make_modular_chains(depth, count, seed)
        return [{"prompt": c.prompt, "answer": c.answer, "depth": c.depth, "target": c.target} for c in chains]
    from reasonlab.tasks.arithmetic import load_gsm8k_jsonl, make_chains, template_atoms

    atoms = load_gsm8k_jsonl(gsm8k) if gsm8k is not None else template_atoms()
    chains = make_chains(atoms, depth, count, seed)
    return [{"prompt": c.prompt, "answer": c.answer, "depth": c.depth,
             "intermediate": [link.answer for link in c.links]} for c in chains]


@app.command("train")
def train_command(
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with an H1Config (curriculum, rl, budget)"),
    policy: Optional[Path] = typer.Option(None, "--policy", help="tinylm folder to start from (default: warm start)"),
    schedule: Optional[str] = typer.Option(None, help="fixed | adaptive | direct | uniform [default: fixed]"),
    max_depth: Optional[int] = typer.Option(None, "--max-depth", help="H [default: 4]"),
    steps_per_stage: Optional[int] = typer.Option(None, "--steps-per-stage", help="iterations per stage [default: 20]"),
    iterations: Optional[int] = typer.Option(None, help="RL iterations [default: stages x steps]"),
    seed: int = typer.Option(0, help="warm-start and RL seed"),
    out: Path = typer.Option(Path("runs/h1"), help="root folder of runs"),
    name: str = typer.Option("train", help="run name"),
    resume: bool = typer.Option(False, "--resume", help="continue the run from its last checkpoint"),
    preset: str = typer.Option("main", help="chain format, warm start and RL defaults of this experiment preset"),
) -> None:
    """Dr.GRPO on modular chains under the depth curriculum; saves the policy into the run folder."""
    from reasonlab.config import load_config, load_yaml
    from reasonlab.runs import Run
    from reasonlab.systems.h1.experiment import warm_start
    from reasonlab.systems.h1.train import H1Config, train_h1
    from reasonlab.train.tinylm import TinyLM

    base = _preset(preset)
    data = load_yaml(config) if config is not None else {}
    curriculum = dict(data.get("curriculum", {}))
    curriculum.update({k: v for k, v in {"schedule": schedule, "max_depth": max_depth,
                                         "steps_per_stage": steps_per_stage}.items() if v is not None})
    curriculum.setdefault("max_depth", base.max_depth)
    curriculum.setdefault("steps_per_stage", base.steps_per_stage)
    rl = {"loss_type": "dr_grpo", "tasks_per_iteration": base.tasks_per_iteration, "learning_rate": base.learning_rate,
          "sampling": {"temperature": 1.0, "max_tokens": base.max_tokens}, "progress": False, "seed": seed,
          **data.get("rl", {})}
    stages = curriculum["max_depth"] - curriculum.get("min_depth", 1) + 1
    rl["iterations"] = iterations or rl.get("iterations") or stages * curriculum["steps_per_stage"]
    h1 = load_config(H1Config, None, **{**data, "curriculum": curriculum, "rl": rl})
    model = TinyLM.load(policy) if policy is not None else warm_start(base, seed)[0]
    run = Run.create(out, name, h1, exist_ok=resume)
    history = train_h1(h1, model, base.chains, run=run, resume=resume)
    model.save(str(run.dir / "policy"))
    for metrics in history[-3:]:
        console.print(f"iteration {metrics['iteration']}: depth {metrics['depth']:.1f} "
                      f"reward {metrics['reward_mean']:.2f} signal groups {metrics['signal_group_fraction']:.2f}")
    console.print(f"policy saved to {run.dir / 'policy'}")


@app.command("eval")
def eval_command(
    policy: Path = typer.Argument(..., help="tinylm folder (a run's policy/)"),
    depths: int = typer.Option(6, help="evaluate depths 1..N"),
    chains: int = typer.Option(128, help="held-out chains per depth"),
    modulus: int = typer.Option(31, help="M of the modular chains"),
    max_constant: int = typer.Option(4, "--max-constant", help="step constants are 1..N"),
    labelled: bool = typer.Option(False, "--labelled/--rewrite", help="chain format (as in training)"),
    preset: Optional[str] = typer.Option(None, help="the chain format of this experiment preset (instead of the "
                                         "three options above)"),
) -> None:
    """Greedy accuracy per depth on held-out modular chains."""
    from reasonlab.systems.h1.environment import accuracy_by_depth
    from reasonlab.systems.h1.experiment import EVAL_SEED, ExperimentConfig
    from reasonlab.train.tinylm import TinyLM

    if preset is not None:
        config = _preset(preset)
        if config.width and depths >= config.width:
            raise UserError(f"--depths {depths} does not fit the {preset} preset's rows of {config.width} slots: "
                            f"use at most {config.width - 1}")
    else:
        config = ExperimentConfig(modulus=modulus, max_constant=max_constant, labelled=labelled)
    config = config.model_copy(update={"max_depth": max(depths - 2, 2)})  # sizes the token cap for depth N
    model = TinyLM.load(policy)
    sets = {d: config.chains(d, chains, EVAL_SEED) for d in range(1, depths + 1)}
    for depth, value in accuracy_by_depth(model, sets, config.max_tokens).items():
        console.print(f"depth {depth}: {value:.3f}")


def _preset(name: str) -> ExperimentConfig:
    from reasonlab.systems.h1.experiment import PRESETS

    if name not in PRESETS:
        raise UserError(f"--preset {name!r} is unknown: use one of {', '.join(PRESETS)}")
    return PRESETS[name]


@app.command("experiment")
def experiment_command(
    out: Path = typer.Option(Path("runs/h1-experiment"), help="folder of the experiment's runs"),
    seeds: list[int] = typer.Option([0, 1, 2], "--seed", help="seeds (repeatable)"),
    preset: str = typer.Option("values", help="values (the run of record) | slots | main | quick"),
) -> None:
    """Curriculum vs direct vs uniform at equal rollout tokens; writes results.json and plots."""
    from reasonlab.systems.h1.experiment import run_experiment

    results = run_experiment(_preset(preset), out, tuple(seeds), log=console.print)
    console.print_json(data=results["summary"])
