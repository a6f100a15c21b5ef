"""Re-test a finished TRM experiment's best checkpoints on freshly generated puzzles (more than its test split).

    .venv/bin/python benchmarks/trm_fresh_test.py runs/trm-nine16 --puzzles 2000 --data-seed 1

Every arm's best checkpoint is scored after each supervision step on `--puzzles` generated Sudoku of the run's
size and givens, drawn with `--data-seed` (not the run's) and disjoint from its train, validation and test
puzzles (same question or same solution: dropped). All arms see the same puzzles, so per seed the difference
TRM − deep supervision is paired; its 95% interval (Newcombe's, from two Wilson intervals) is conservative.
Prints one line per seed and writes the numbers to `<experiment>/fresh-test-<puzzles>-seed<data_seed>.json`.
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
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not (args.experiment / "summary.json").is_file():
        raise SystemExit(f"{args.experiment} holds no finished experiment (summary.json): run `reasonlab trm "
                         "experiment` to the end first")
    run = Run.open(args.experiment)
    experiment = ExperimentConfig.model_validate(run.settings())
    recipe = experiment.recipe
    puzzles = fresh_puzzles(recipe, args.puzzles, args.data_seed)
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fresh.csv"
        write_csv(puzzles, path)
        for arm, seeds in run.summary()["per_seed"].items():
            for seed in seeds:
                arm_config = experiment.arm_config(arm, int(seed), str(run.dir / "arms"))
                checkpoint = run.dir / "arms" / arm_run_name(arm, int(seed), arm_config) / "checkpoints" / "best.pt"
                result = eval_checkpoint(checkpoint, str(path))
                results.setdefault(arm, {})[seed] = {"exact": result["exact"], "count": result["count"],
                                                     "exact_by_step": result["exact_by_step"]}
    print(f"{len(puzzles)} fresh {recipe.size}x{recipe.size} puzzles ({recipe.givens} givens, data seed "
          f"{args.data_seed}); best checkpoints at N_sup={recipe.n_sup}:")
    for seed, trm in results.get("trm", {}).items():
        ds = results["deep_supervision"][seed]
        k1, k2, n = round(trm["exact"] * trm["count"]), round(ds["exact"] * ds["count"]), trm["count"]
        low, high = difference_interval(k1, n, k2, n)
        print(f"seed {seed}: TRM {trm['exact']:.3f} vs deep supervision {ds['exact']:.3f} (n={n}): "
              f"{100 * (trm['exact'] - ds['exact']):+.1f} points (95% CI {100 * low:+.1f} to {100 * high:+.1f})")
    atomic_write_json(args.experiment / f"fresh-test-{args.puzzles}-seed{args.data_seed}.json",
                      {"puzzles": len(puzzles), "data_seed": args.data_seed, "results": results})


if __name__ == "__main__":
    main()
