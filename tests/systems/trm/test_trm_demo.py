"""The quick demo (`reasonlab demo --only trm`): its config is what docs/trm.md says, its headline carries n and
intervals, it reuses finished work unless `fresh`, and training never stays silent."""

import re
from pathlib import Path

import pytest

import reasonlab.systems.trm.training as training
from reasonlab.demo import discover_demos, read_headline
from reasonlab.systems.trm.config import PRESETS, ExperimentConfig, TRMTrainConfig
from reasonlab.systems.trm.experiment import demo_headline, difference_interval, quick

DOCS = Path(__file__).resolve().parents[3] / "docs" / "trm.md"
TINY_RECIPE = dict(
    task="sudoku", size=4, givens=6, train_size=16, val_size=8, test_size=8, mixer="mlp", hidden_size=16,
    num_heads=2, prefix_len=1, ffn_multiple=8, n_sup=2, eval_steps=2, batch_size=4, eval_every=3,
    checkpoint_every=3, log_every=1, eval_batch_size=8, budget_clock="process", threads=1, device="cpu",
    progress=False,
)


def _record(exact: float, seconds: float, early: float = 0.5, count: int = 1000, steps: int = 1000) -> dict:
    return {"test_exact": exact, "test_count": count, "train_steps": steps, "train_seconds": seconds,
            "test_exact_by_step": [early / 2, early, *[exact] * 6]}


def test_the_difference_interval_is_newcombes_hybrid_score_interval():
    # Newcombe (1998), Statistics in Medicine 17:873, example (a) 56/70 - 48/80 and (b) 9/10 - 3/10, method 10
    assert difference_interval(56, 70, 48, 80) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    assert difference_interval(9, 10, 3, 10) == pytest.approx((0.1705, 0.8090), abs=5e-5)


def test_the_headline_gives_both_rates_with_n_and_intervals_the_differences_and_the_step_cost():
    summary = {"per_seed": {"trm": {"0": _record(0.84, 48.0, early=0.54)},
                            "deep_supervision": {"0": _record(0.70, 22.0, early=0.26)}}}
    headline = demo_headline(PRESETS["quick"], summary)
    assert headline.result == (
        "After 1000 optimizer steps per arm (1 seed). After 2 supervision steps: TRM 0.54 (540/1000, 95% CI "
        "0.51-0.57) vs. deep supervision 0.26 (260/1000, 95% CI 0.23-0.29), TRM - deep supervision +0.280 (95% CI "
        "+0.238 to +0.320). At N_sup=8: TRM 0.84 (840/1000, 95% CI 0.82-0.86) vs. deep supervision 0.70 (700/1000, "
        "95% CI 0.67-0.73), TRM - deep supervision +0.140 (95% CI +0.103 to +0.176). A TRM step costs 2.2x a "
        "deep-supervision step (48 vs. 22 CPU-ms), so at equal CPU time deep supervision gets 2.2x the steps")
    assert (headline.holds, headline.kind, headline.plot) == (True, "pipeline check", "plots/arms.png")
    # the claim is the lead after 2 supervision steps: behind at N_sup does not change it ...
    behind = {"per_seed": {"trm": {"0": _record(0.68, 48.0, early=0.40)},
                           "deep_supervision": {"0": _record(0.79, 22.0, early=0.28)}}}
    assert demo_headline(PRESETS["quick"], behind).holds is True
    # ... a lead within the test noise, or behind on one seed, does
    close = {"per_seed": {"trm": {"0": _record(0.72, 48.0, early=0.30)},
                          "deep_supervision": {"0": _record(0.70, 22.0, early=0.28)}}}
    assert demo_headline(PRESETS["quick"], close).holds is False
    two = {"per_seed": {"trm": {"0": _record(0.90, 48.0, early=0.6), "1": _record(0.60, 48.0, early=0.2)},
                        "deep_supervision": {"0": _record(0.60, 22.0, early=0.2), "1": _record(0.62, 22.0, early=0.3)}}}
    split = demo_headline(PRESETS["quick"], two)
    assert "(2 seeds)" in split.result and "1500/2000" in split.result and "per seed 0.140 ± 0.226 (n=2)" in split.result
    assert split.holds is False


def test_the_demo_config_is_what_the_docs_say():
    quick_config = PRESETS["quick"]
    recipe = quick_config.recipe
    assert (quick_config.arms, quick_config.seeds, quick_config.steps) == (["trm", "deep_supervision"], [0], 1000)
    assert (recipe.size, recipe.givens, recipe.train_size, recipe.test_size, recipe.n_sup) == (6, 12, 200, 1000, 8)
    # validated and tested once, at the last step (no checkpoint choice), at N_sup
    assert (recipe.eval_every, recipe.eval_steps, recipe.threads) == (1000, 8, 1)
    # the run of record's data and net: only the split sizes and the evaluation schedule differ
    main = PRESETS["main"].recipe.model_dump()
    differing = sorted(key for key, value in recipe.model_dump().items() if main[key] != value)
    assert differing == ["checkpoint_every", "eval_every", "eval_steps", "test_size", "val_size"]
    docs = DOCS.read_text()
    section = docs[docs.index("### The quick demo"):]
    section = section[: section.index("\n## ")]
    for phrase in ("1000 optimizer steps", "one seed", "1000 held-out puzzles", "12 givens", "200 training puzzles",
                   "N_sup = 8"):
        assert phrase in section, f"docs/trm.md's demo section no longer says {phrase!r}"
    demo = discover_demos()["trm"]
    assert "equal optimizer steps" in demo.title and demo.minutes == pytest.approx(2.5)
    assert re.search(r"about 2\.5 min", section)


@pytest.fixture
def tiny_quick(monkeypatch):
    config = ExperimentConfig(recipe=TRMTrainConfig(**TINY_RECIPE), arms=["trm", "deep_supervision"], seeds=[0],
                              steps=3)
    monkeypatch.setitem(PRESETS, "quick", config)
    return config


def test_the_demo_writes_its_headline_and_reuses_its_runs_unless_fresh(tiny_quick, tmp_path, capsys):
    out = quick(tmp_path, fresh=False)
    headline = read_headline(out)
    assert headline is not None and headline.system == "trm" and (out / headline.plot).is_file()
    assert re.match(r"After 3 optimizer steps per arm \(1 seed\)\. After 2 supervision steps: TRM \d\.\d\d \(\d+/8, "
                    r"95% CI \d\.\d\d-\d\.\d\d\) vs\. deep supervision \d\.\d\d \(\d+/8, ", headline.result)
    err = capsys.readouterr().err
    assert "trm experiment [1/2] trm, seed 0 (3 optimizer steps) ..." in err
    assert "training trm seed 0 in" in err and "testing the checkpoint of step 3 on 8 puzzles" in err
    assert quick(tmp_path, fresh=False) == out
    err = capsys.readouterr().err
    assert f"reusing the finished demo in {out}" in err and "reusing deep_supervision seed 0 from" in err
    quick(tmp_path, fresh=True)
    err = capsys.readouterr().err
    assert "reusing" not in err and "training deep_supervision seed 0 in" in err
    # an earlier demo made with another config is started again, and said so
    PRESETS["quick"] = tiny_quick.model_copy(update={"steps": 2})
    quick(tmp_path, fresh=False)
    assert "was made with another config (differs in steps): starting it again" in capsys.readouterr().err


def test_training_reports_its_step_its_eta_and_the_test(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(training, "REPORT_SECONDS", 0.0)
    config = TRMTrainConfig(**{**TINY_RECIPE, "T": 2, "n": 2, "max_steps": 6}, out=str(tmp_path), name="talk")
    training.train(config)
    lines = capsys.readouterr().err.splitlines()
    assert lines[:2] == ["trm train: building the sudoku data (generated) ...",
                         "talk: training for 6 optimizer steps (batch 4, validation every 3 steps)"]
    assert any(re.fullmatch(r"talk: step 4/6, ETA \d+ s, loss \d\.\d{3}, train exact \d\.\d\d", line) for line in lines)
    assert any(re.fullmatch(r"talk: step 3/6, ETA \d+ s, val exact \d\.\d{3} on 8 puzzles \(best .*\)", line)
               for line in lines)
    assert any(re.fullmatch(r"talk: testing: 50% of the supervision steps, ETA \d+ s", line) for line in lines)
    assert lines[-1].startswith("talk: test exact ") and lines[-1].endswith("at N_sup=2 on 8 puzzles")


def test_a_time_budget_reports_the_clock_instead_of_a_step_total(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(training, "REPORT_SECONDS", 0.0)
    config = TRMTrainConfig(**{**TINY_RECIPE, "T": 2, "n": 2, "max_steps": 1_000_000, "time_budget_s": 0.05},
                            out=str(tmp_path), name="clock")
    training.train(config)
    err = capsys.readouterr().err
    assert "clock: training for 0.05 s of process time" in err
    assert re.search(r"clock: step \d+, 0/0.05 CPU-s, ETA", err)


def test_the_documented_puzzle_has_exactly_one_solution():
    from reasonlab.systems import trm
    from reasonlab.tasks import sudoku

    documented = re.findall(r'trm solve runs/sudoku6 --puzzle "([^"]+)"', DOCS.read_text())
    documented += re.findall(r'solve_puzzle\(run_dir, "([^"]+)"\)', DOCS.read_text() + (trm.__doc__ or ""))
    assert len(documented) == 3 and len(set(documented)) == 1
    grid = sudoku.parse_grid(documented[0], 6)
    assert (int((grid > 0).sum()), sudoku.count_solutions(grid, limit=3)) == (12, 1)
