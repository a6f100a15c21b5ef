"""Re-test a finished TRM experiment's best checkpoints on freshly generated puzzles (more than its test split).

    .venv/bin/python benchmarks/trm_fresh_test.py runs/trm-nine16 --puzzles 2000 --data-seed 1

Every arm's best checkpoint is scored after each supervision step on `--puzzles` generated Sudoku of the run's
size and givens, drawn with `--data-seed` (not the run's) and disjoint from its train, validation and test
puzzles (same question or same solution: dropped). All arms see the same puzzles, so per seed the difference
TRM − deep supervision is paired; its 95% interval (Newcombe's, from two Wilson intervals) is conservative.
Prints one line per seed and writes the numbers to `<experiment>/fresh-test-<puzzles>-seed<data_seed>.json`.

`--deep-supervision-from OTHER` scores the deep-supervision arms of another finished experiment on the same data
(e.g. those arms trained for more steps) in place of the experiment's own, and writes
`fresh-test-<puzzles>-seed<data_seed>-ds-<OTHER's name>.json`:

    .venv/bin/python benchmarks/trm_fresh_test.py runs/trm-nine16-deep-1k --puzzles 2000 --data-seed 1 \
        --deep-supervision-from runs/trm-nine16-deep-1k-ds30k
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import torch

from reasonlab.runs import Run, atomic_write_json
from reasonlab.systems.trm.config import ExperimentConfig, TRMTrainConfig
from reasonlab.systems.trm.experiment import arm_run_name, difference_interval
from reasonlab.systems.trm.inference import eval_checkpoint
from reasonlab.tasks import sudoku as sudoku_task


def fresh_puzzles(recipe: TRMTrainConfig, count: int, data_seed: int) -> list[sudoku_task.SudokuPuzzle]:
    """`count` generated puzzles of the recipe's size and givens that share no question or solution with the
    run's own train, validation and test puzzles."""
    if data_seed == recipe.data_seed:
        raise SystemExit(f"--data-seed {data_seed} is the run's own data seed: pick another")
    used = sudoku_task.generate_dataset(recipe.size, recipe.givens,
                                        recipe.train_size + recipe.val_size + recipe.test_size, recipe.data_seed)
    seen = {p.question.tobytes() for p in used} | {p.solution.tobytes() for p in used}
    candidates = sudoku_task.generate_dataset(recipe.size, recipe.givens, count + len(used), data_seed)
    fresh = [p for p in candidates if p.question.tobytes() not in seen and p.solution.tobytes() not in seen]
    return fresh[:count]


def write_csv(puzzles: list[sudoku_task.SudokuPuzzle], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "question", "answer", "rating"])
        for p in puzzles:
            writer.writerow(["generated", "".join(str(v) for v in p.question.flat),
                             "".join(str(v) for v in p.solution.flat), p.effort])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path, help="a finished `reasonlab trm experiment` run directory")
    parser.add_argument("--puzzles", type=int, default=2000)
    parser.add_argument("--data-seed", type=int, default=1)
    parser.add_argument("--deep-supervision-from", type=Path, default=None,
                        help="a finished experiment on the same data whose deep-supervision arms replace this one's")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run, experiment = open_experiment(args.experiment)
    recipe = experiment.recipe
    sources = {arm: (run, experiment, seeds) for arm, seeds in run.summary()["per_seed"].items()}
    suffix = ""
    if args.deep_supervision_from is not None:
        other, other_experiment = open_experiment(args.deep_supervision_from)
        if other_experiment.recipe != recipe:
            raise SystemExit(f"{args.deep_supervision_from} was trained on another recipe than {args.experiment}: "
                             "pass an experiment made with the same preset and --set options")
        if "deep_supervision" not in other.summary()["per_seed"]:
            raise SystemExit(f"{args.deep_supervision_from} has no deep_supervision arm: pass one that trained it")
        sources["deep_supervision"] = (other, other_experiment, other.summary()["per_seed"]["deep_supervision"])
        suffix = f"-ds-{other.dir.name}"
    puzzles = fresh_puzzles(recipe, args.puzzles, args.data_seed)
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fresh.csv"
        write_csv(puzzles, path)
        for arm, (source, source_experiment, seeds) in sources.items():
            for seed in seeds:
                arm_config = source_experiment.arm_config(arm, int(seed), str(source.dir / "arms"))
                checkpoint = source.dir / "arms" / arm_run_name(arm, int(seed), arm_config) / "checkpoints" / "best.pt"
                result = eval_checkpoint(checkpoint, str(path))
                results.setdefault(arm, {})[seed] = {"exact": result["exact"], "count": result["count"],
                                                     "exact_by_step": result["exact_by_step"]}
    print(f"{len(puzzles)} fresh {recipe.size}x{recipe.size} puzzles ({recipe.givens} givens, data seed "
          f"{args.data_seed}); best checkpoints at N_sup={recipe.n_sup}:")
    for arm, seeds in results.items():
        print(f"{arm}: " + ", ".join(f"seed {seed} {record['exact']:.3f}" for seed, record in seeds.items()))
    for seed, trm in results.get("trm", {}).items():
        ds = results.get("deep_supervision", {}).get(seed)
        if ds is None:
            continue
        k1, k2, n = round(trm["exact"] * trm["count"]), round(ds["exact"] * ds["count"]), trm["count"]
        low, high = difference_interval(k1, n, k2, n)
        print(f"seed {seed}: TRM {trm['exact']:.3f} vs deep supervision {ds['exact']:.3f} (n={n}): "
              f"{100 * (trm['exact'] - ds['exact']):+.1f} points (95% CI {100 * low:+.1f} to {100 * high:+.1f})")
    record = {"puzzles": len(puzzles), "data_seed": args.data_seed, "results": results}
    if args.deep_supervision_from is not None:
        record["deep_supervision_from"] = str(args.deep_supervision_from)
    atomic_write_json(args.experiment / f"fresh-test-{args.puzzles}-seed{args.data_seed}{suffix}.json", record)


def open_experiment(folder: Path) -> tuple[Run, ExperimentConfig]:
    """A finished `reasonlab trm experiment` run and its config; exits with a one-line message otherwise."""
    if not (folder / "summary.json").is_file():
        raise SystemExit(f"{folder} holds no finished experiment (summary.json): run `reasonlab trm experiment` "
                         "to the end first")
    run = Run.open(folder)
    return run, ExperimentConfig.model_validate(run.settings())


if __name__ == "__main__":
    main()
