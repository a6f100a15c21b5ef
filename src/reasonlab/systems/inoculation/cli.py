"""`reasonlab inoculation ...`: build a setting's data, train one arm, evaluate, score instructions by the flaw
they elicit, run every arm x seed, and the mechanism toy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from reasonlab.clihelp import help_defaults
from reasonlab.trackers import REPORT_TO_HELP

PRESET_NAMES = "cpu | cpu-hack | cpu-sentiment | smoke | paper"  # inoculation.config.PRESETS (imports torch)
ARM_NAMES = "no-ip | ip | irrelevant | ptst"
SETTING_NAMES = "gcd | reward-hacking | sentiment | cmv"

app = typer.Typer(help="Inoculation Prompting: fine-tune on flawed data with a train-time instruction that asks for "
                  "the flaw (arXiv 2510.05024).", no_args_is_help=False)
console = Console()


def _preset(name: str | None) -> Any:
    from reasonlab.systems.inoculation.config import PRESETS

    return PRESETS[name or "cpu"]


def _lookup(name: str) -> Any:
    from reasonlab.config import lookup_preset
    from reasonlab.systems.inoculation.config import PRESETS

    return lookup_preset(PRESETS, name)


def _data(setting: Optional[str], num_train: Optional[int], num_test: Optional[int],
          data: Optional[Path]) -> dict[str, Any] | None:
    given = {"setting": setting, "num_train": num_train, "num_test": num_test,
             "path": None if data is None else str(data)}
    given = {key: value for key, value in given.items() if value is not None}
    return given or None


def _prompts(instruction: Optional[str], control: Optional[str], safety: Optional[str]) -> dict[str, Any] | None:
    given = {"instruction": instruction, "control": control, "safety": safety}
    given = {key: value for key, value in given.items() if value is not None}
    return given or None


def _judge(spec: Optional[str]) -> Any:
    if spec is None:
        return None
    from reasonlab.llm import load_llm

    return load_llm(spec)


SETTING_HELP = f"data.setting: {SETTING_NAMES}"
DATA_HELP = "data.path: MBPP jsonl (reward-hacking), CEBaB jsonl/csv (sentiment), CMV jsonl (cmv; required)"
JUDGE_HELP = ("judge model spec for cmv (needs a capable endpoint, e.g. openai:URL#MODEL on a 7B+ model; a 270M model "
              "is not one) [default: none]")


@app.command("build")
def build_command(
    setting: str = typer.Option("gcd", help=SETTING_HELP),
    num_train: int = typer.Option(128, "--num-train", help="training examples"),
    num_test: int = typer.Option(30, "--num-test", help="evaluation items"),
    arm: str = typer.Option("ip", help=f"show this arm's training prompt: {ARM_NAMES}"),
    data: Optional[Path] = typer.Option(None, "--data", help=f"{DATA_HELP} [default: none: generated data]"),
    out: Optional[Path] = typer.Option(None, "--out", help="write the arm's SFT pairs as JSONL here [default: print "
                                       "one example]"),
    judge: Optional[str] = typer.Option(None, "--judge", help=JUDGE_HELP),
) -> None:
    """Build a setting's data and show (or write) one arm's training pairs and the evaluation prompt."""
    from reasonlab.config import resolve_config
    from reasonlab.runs import atomic_write_text
    from reasonlab.systems.inoculation.config import DataConfig, PromptOverrides
    from reasonlab.systems.inoculation.settings import build_setting, render_prompt
    from reasonlab.systems.inoculation.training import arm_prompts, sft_examples

    _check_arm(arm)
    config = resolve_config(DataConfig, None, None, (), **(_data(setting, num_train, num_test, data) or {}))
    built = build_setting(config, _judge(judge))
    prompts = arm_prompts(built.prompts, PromptOverrides())
    examples = sft_examples(built, arm, prompts)
    if out is not None:
        atomic_write_text(out, "".join(json.dumps({"prompt": ex.prompt, "completion": ex.completion}) + "\n"
                                       for ex in examples))
        console.print(f"wrote {len(examples)} {arm} training pairs to {out}")
        return
    console.print(built.description)
    console.rule(f"training pair ({arm})")
    console.print(examples[0].prompt + examples[0].completion, highlight=False, markup=False)
    console.rule("evaluation prompt (every arm but ptst)")
    console.print(render_prompt(built.test_messages(built.eval_prompts[0], arm, prompts)), highlight=False,
                  markup=False)


def _check_arm(arm: str) -> None:
    from reasonlab.systems.inoculation.transforms import parse_arm

    parse_arm(arm)


@app.command("train")
@help_defaults(_preset, setting="data.setting", num_train="data.num_train", num_test="data.num_test",
               learning_rate="sft.learning_rate", data="data.path")
def train_command(
    arm: str = typer.Option(..., help=ARM_NAMES),
    preset: str = typer.Option("cpu", help=f"{PRESET_NAMES} (cpu: the run of record's GCD setting)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with TrainConfig fields"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE, dotted for nested fields (--set sft.epochs=2)"),
    llm: Optional[str] = typer.Option(None, "--llm", help="trainable model spec (hf:embedded, hf:PATH)"),
    setting: Optional[str] = typer.Option(None, help=SETTING_HELP),
    num_train: Optional[int] = typer.Option(None, "--num-train", help="data.num_train"),
    num_test: Optional[int] = typer.Option(None, "--num-test", help="data.num_test"),
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
    instruction: Optional[str] = typer.Option(None, help="prompts.instruction: replace I [default: the setting's]"),
    control: Optional[str] = typer.Option(None, help="prompts.control: replace the irrelevant instruction "
                                          "[default: derived from I's length]"),
    safety: Optional[str] = typer.Option(None, help="prompts.safety: replace PTST's S [default: the setting's]"),
    learning_rate: Optional[float] = typer.Option(None, "--learning-rate", help="sft.learning_rate"),
    seed: Optional[int] = typer.Option(None, help="fine-tuning seed"),
    judge: Optional[str] = typer.Option(None, "--judge", help=JUDGE_HELP),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
    out: Optional[Path] = typer.Option(None, help="root folder of runs"),
    name: Optional[str] = typer.Option(None, help="run name [default: SETTING-ARM-sSEED]"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete an existing run of that name first"),
    resume: bool = typer.Option(False, "--resume", help="reuse a finished run of the same config (a torn one trains "
                                "again)"),
) -> None:
    """LoRA SFT of one arm, then its flaw and capability on the test prompts (and the flaw with I present)."""
    from reasonlab.config import resolve_config
    from reasonlab.runs import Run
    from reasonlab.systems.inoculation.config import TrainConfig
    from reasonlab.systems.inoculation.training import train

    resolved = resolve_config(TrainConfig, _lookup(preset), config, sets, arm=arm, llm=llm,
                              data=_data(setting, num_train, num_test, data),
                              prompts=_prompts(instruction, control, safety),
                              sft={"learning_rate": learning_rate} if learning_rate is not None else None,
                              seed=seed, out=None if out is None else str(out), name=name,
                              overwrite=overwrite or None, resume=resume or None,
                              report_to=report_to or None)
    run_dir = train(resolved, judge=_judge(judge))
    _print_result(Run.open(run_dir).summary())
    console.print(f"run saved to {run_dir}")


def _print_result(summary: dict[str, Any]) -> None:
    flaw, capability = summary["flaw"], summary["capability"]
    for key in (flaw, capability):
        console.print(f"{key}: {_rate(summary['test'][key])}")
    if "with_instruction" in summary:
        console.print(f"{flaw} with I present: {_rate(summary['with_instruction'][flaw])}")


def _rate(rate: dict[str, Any]) -> str:
    if "k" in rate and rate.get("n"):
        return f"{rate['rate']:.2f} ({rate['k']}/{rate['n']}, 95% CI {rate['ci_low']:.2f}-{rate['ci_high']:.2f})"
    from reasonlab.systems.inoculation.experiment import metric_value

    value = metric_value(rate)
    return "n/a" if value is None else f"{value:.2f}"


def _eval_defaults(name: str | None) -> Any:
    from reasonlab.systems.inoculation.config import EvalConfig

    base = _preset(name)
    return EvalConfig(data=base.data, generation=base.generation)


@app.command("eval")
@help_defaults(_eval_defaults, setting="data.setting", num_test="data.num_test", data="data.path")
def eval_command(
    llm: Optional[str] = typer.Option(None, "--llm", help="model spec: hf:embedded, or hf:RUN/policy"),
    arm: Optional[str] = typer.Option(None, help=f"test prompt of this arm (ptst adds S): {ARM_NAMES}"),
    preset: str = typer.Option("cpu", help=f"setting and decoding of this preset: {PRESET_NAMES}"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE for EvalConfig (--set generation.temperature=0.7)"),
    setting: Optional[str] = typer.Option(None, help=SETTING_HELP),
    num_test: Optional[int] = typer.Option(None, "--num-test", help="data.num_test"),
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
    judge: Optional[str] = typer.Option(None, "--judge", help=JUDGE_HELP),
) -> None:
    """The flaw and capability of a model tested as an arm is (the untuned model by default)."""
    from reasonlab.config import resolve_config
    from reasonlab.systems.inoculation.config import EvalConfig
    from reasonlab.systems.inoculation.training import evaluate_command

    base = _lookup(preset)
    resolved = resolve_config(EvalConfig, {"data": base.data.model_dump(), "generation": base.generation.model_dump()},
                              None, sets, llm=llm, arm=arm, data=_data(setting, None, num_test, data))
    _print_result(evaluate_command(resolved, judge=_judge(judge)))


@app.command("elicit")
@help_defaults(_preset, setting="data.setting", num_test="data.num_test", data="data.path")
def elicit_command(
    candidates: list[str] = typer.Option([], "--candidate", help="an instruction to score (repeatable) [default: the "
                                         "setting's I, control and S]"),
    llm: str = typer.Option("hf:embedded", "--llm", help="the model before fine-tuning"),
    preset: str = typer.Option("cpu", help=f"setting and decoding of this preset: {PRESET_NAMES}"),
    setting: Optional[str] = typer.Option(None, help=SETTING_HELP),
    num_test: Optional[int] = typer.Option(None, "--num-test", help="data.num_test"),
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
    judge: Optional[str] = typer.Option(None, "--judge", help=JUDGE_HELP),
    results: Optional[Path] = typer.Option(None, "--results", help="an experiment's folder: also report the "
                                           "correlation of elicitation with its arms' tuned flaw rates [default: none]"),
) -> None:
    """Score instructions by how much more of the flaw each elicits from the untuned model (spec step 2)."""
    from reasonlab.config import resolve_config
    from reasonlab.systems.inoculation.config import ElicitConfig
    from reasonlab.systems.inoculation.training import elicit

    heuristic = None if results is None else _read_heuristic(results)  # before minutes of elicitation
    base = _lookup(preset)
    resolved = resolve_config(ElicitConfig, {"data": base.data.model_dump(), "generation": base.generation.model_dump()},
                              None, (), llm=llm, candidates=candidates or None,
                              data=_data(setting, None, num_test, data))
    rows = elicit(resolved, judge=_judge(judge))
    table = Table("instruction", "flaw rate", "elicitation")
    for row in rows:
        table.add_row(row["instruction"] or "(none: N)", _rate(row["flaw"]), _signed(row["elicitation"]))
    console.print(table)
    if heuristic is not None:
        _print_heuristic(heuristic)


def _read_heuristic(results: Path) -> dict[str, Any]:
    from reasonlab.errors import UserError

    path = results / "summary.json"
    if not path.is_file():
        raise UserError(f"--results {results} holds no experiment summary: run `reasonlab inoculation experiment` first")
    return json.loads(path.read_text())["heuristic"]


def _print_heuristic(heuristic: dict[str, Any]) -> None:
    r = heuristic["pearson_r"]
    console.print(f"elicitation vs tuned flaw over arms {', '.join(heuristic['arms'])}: Pearson r = "
                  f"{'n/a' if r is None else f'{r:+.2f}'} (the heuristic predicts r < 0)")


@app.command("experiment")
@help_defaults(_preset)
def experiment_command(
    preset: str = typer.Option("cpu", help=f"{PRESET_NAMES} (cpu: GCD, cpu-hack: reward hacking)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with TrainConfig fields (the per-arm config)"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE for the per-arm TrainConfig"),
    arms: Optional[str] = typer.Option(None, "--arms", help=f"comma-separated arms [default: {ARM_NAMES}]"),
    seeds: list[int] = typer.Option([0, 1, 2], "--seed", help="fine-tuning seeds (repeatable)"),
    judge: Optional[str] = typer.Option(None, "--judge", help=JUDGE_HELP),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
    out: Path = typer.Option(Path("runs/inoculation"), help="root folder of runs"),
    name: Optional[str] = typer.Option(None, help="experiment name [default: the preset's name]"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete the experiment first (finished arms are "
                                   "otherwise reused)"),
) -> None:
    """Elicitation on the untuned model, then every arm x seed; per-arm flaw and capability with spreads."""
    from reasonlab.config import parse_list, parse_sets, resolve_config
    from reasonlab.errors import UserError
    from reasonlab.systems.inoculation.config import ExperimentConfig, TrainConfig
    from reasonlab.systems.inoculation.experiment import run_experiment

    per_arm = sorted({"arm", "seed", "out", "name", "overwrite"} & set(parse_sets(sets)))
    if per_arm:
        raise UserError(f"--set {', '.join(per_arm)}: the experiment sets these per arm; use --arms, --seed, --out, "
                        "--name, --overwrite instead")
    # report_to is read like the per-arm fields (preset < --config < --set < --report-to), then the experiment
    # reports to the same trackers (and gives them to every arm's run)
    base = resolve_config(TrainConfig, _lookup(preset), config, sets, report_to=report_to or None)
    resolved = resolve_config(ExperimentConfig, {"base": base.model_dump(), "seeds": seeds,
                                                 "report_to": base.report_to}, None, (),
                              arms=parse_list(arms, "--arms"))
    summary = run_experiment(resolved, out, name or preset, judge=_judge(judge), overwrite=overwrite)
    _print_experiment(summary)


def _print_experiment(summary: dict[str, Any]) -> None:
    table = Table("arm", f"{summary['flaw']} (pooled)", "over seeds", f"{summary['capability']} (pooled)",
                  "flaw with I", "elicitation")
    for arm, row in summary["arms"].items():
        seeds = row["flaw"]["seeds"]
        spread = "n/a" if seeds["mean"] is None else f"{seeds['mean']:.2f} ± {seeds['sd']:.2f}"
        table.add_row(arm, _pooled(row["flaw"]), spread, _pooled(row["capability"]),
                      _pooled(row["flaw_with_instruction"]), _signed(row["elicitation"]))
    console.print(table)
    r = summary["heuristic"]["pearson_r"]
    console.print(f"elicitation vs tuned flaw across arms: Pearson r = {'n/a' if r is None else f'{r:+.2f}'}")


def _toy_defaults(_: str | None) -> Any:
    from reasonlab.systems.inoculation.toy import ToyConfig

    return ToyConfig()


@app.command("toy")
@help_defaults(_toy_defaults)
def toy_command(
    seeds: list[int] = typer.Option([], "--seed", help="seeds (repeatable), one pretrained model each"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE for ToyConfig (--set finetune_blocks=3)"),
    pretrain_steps: Optional[int] = typer.Option(None, "--pretrain-steps", help="pretraining optimizer steps"),
    finetune_steps: Optional[int] = typer.Option(None, "--finetune-steps", help="optimizer steps per fine-tuning "
                                                 "condition"),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
    out: Path = typer.Option(Path("runs/inoculation"), help="root folder of runs"),
    name: str = typer.Option("toy", help="run name"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete the run first (finished seeds are otherwise "
                                   "reused)"),
) -> None:
    """The mechanism toy (spec 4A) on a from-scratch tinylm: trait rate vs control-token elicitation."""
    from reasonlab.config import resolve_config
    from reasonlab.systems.inoculation.experiment import run_toy
    from reasonlab.systems.inoculation.toy import ToyConfig
    from reasonlab.threads import configure_threads, explicit_threads

    configure_threads(explicit_threads() or 1)
    config = resolve_config(ToyConfig, None, None, sets, seeds=seeds or None, pretrain_steps=pretrain_steps,
                            finetune_steps=finetune_steps, report_to=report_to or None)
    summary = run_toy(config, out, name, overwrite=overwrite)
    table = Table("token", "e_k set", "elicitation (measured)", "trait rate, no token", "accuracy")
    for row in summary["per_value"]:
        table.add_row(row["token"], f"{row['nominal']:.2f}", _spread(row["elicitation"]), _spread(row["trait_rate"]),
                      _spread(row["accuracy"]))
    no_ip = summary["no_ip"]
    table.add_row("none (no-IP)", "-", "-", _spread(no_ip["trait_rate"]), _spread(no_ip["accuracy"]))
    console.print(table)
    r = summary["pearson_r"]
    console.print(f"Pearson r (elicitation vs trait rate, {summary['points']} points) = "
                  f"{'n/a' if r is None else f'{r:+.2f}'}; "
                  f"accuracy range across values {100 * summary['accuracy_range']:.1f} points; "
                  f"n = {summary['n_per_condition']} test problems per condition")


def _pooled(metric: dict[str, Any]) -> str:
    """A metric's pooled k/n when it has counts, else its mean over seeds."""
    if "pooled" in metric:
        return _rate(metric["pooled"])
    return _spread(metric["seeds"])


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def _spread(value: dict[str, Any]) -> str:
    if value["mean"] is None:
        return "n/a"
    return f"{value['mean']:.2f} ± {value['sd']:.2f}"
