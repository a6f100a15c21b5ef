import json

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from reasonlab.config import load_config
from reasonlab.errors import UserError
from reasonlab.runs import Run
from reasonlab.systems.trm.cli import TRAIN_PRESET_HELP, app
from reasonlab.systems.trm.config import PRESETS, TRAIN_PRESETS, TRMTrainConfig
from reasonlab.systems.trm.inference import eval_checkpoint, solve_puzzle
from reasonlab.systems.trm.training import load_checkpoint, load_model, train
from reasonlab.tasks import sudoku

TINY = dict(
    task="sudoku", size=4, givens=6, train_size=64, val_size=32, test_size=32, mixer="mlp", hidden_size=32,
    num_heads=2, n=2, T=2, n_sup=3, prefix_len=1, ffn_multiple=16, batch_size=16, lr=1e-2, warmup_steps=5,
    weight_decay=0.1, puzzle_emb_lr=1e-2, ema=0.9, eval_every=20, checkpoint_every=20, log_every=10,
    eval_steps=5, max_steps=60, progress=False, device="cpu", threads=1,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    run_dir = train(TRMTrainConfig(**TINY, out=str(out), name="tiny"))
    return run_dir


def test_training_lowers_the_loss_and_writes_a_complete_run(trained):
    records = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0]
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["train_steps"] == 60 and summary["task"] == "sudoku-4x4"
    assert len(summary["test_exact_by_step"]) == 5 and summary["test_count"] == 32
    assert summary["test_exact"] == summary["test_exact_by_step"][2]  # read at N_sup = 3
    validations = [(r["val_exact"], r["step"]) for r in records if "val_exact" in r]
    assert [step for _, step in validations] == [20, 40, 60]
    assert (summary["val_exact"], summary["best_step"]) == max(validations)  # ties go to the later checkpoint
    for name in ("checkpoints/best.pt", "checkpoints/last.pt", "plots/training_curve.png",
                 "plots/accuracy_vs_step.png", "config.yaml"):
        assert (trained / name).is_file(), name


def test_every_parameter_changed_and_the_ema_differs_from_the_live_weights(trained):
    state = load_checkpoint(trained / "checkpoints" / "last.pt")
    torch.manual_seed(0)
    from reasonlab.systems.trm.model import ModelConfig, RecursiveReasoner

    fresh = RecursiveReasoner(ModelConfig(**state["model_config"]))
    for name, p in fresh.named_parameters():
        assert not torch.equal(p, state["model"][name]), f"{name} did not change"
        assert not torch.equal(state["ema"][name], state["model"][name]), f"EMA of {name} equals the weights"
    assert state["model"]["puzzle_emb.weight"].abs().sum() > 0  # sign-SGD moved the shared puzzle embedding


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    config = {**TINY, "max_steps": 20, "checkpoint_every": 10, "eval_every": 10, "out": str(tmp_path)}
    straight = train(TRMTrainConfig(**config, name="straight"))
    train(TRMTrainConfig(**{**config, "max_steps": 10}, name="split"))
    resumed = train(TRMTrainConfig(**config, name="split", resume=True))
    a = load_checkpoint(straight / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 20
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=0, atol=0, msg=key)


def test_a_run_is_never_silently_reused_or_resumed_from_nothing(trained, tmp_path):
    with pytest.raises(UserError, match=r"run directory .*tiny already exists: pass --resume"):
        train(TRMTrainConfig(**TINY, out=str(trained.parent), name="tiny"))
    with pytest.raises(UserError, match=f"--resume: run directory {tmp_path / 'fresh'} has no checkpoint"):
        train(TRMTrainConfig(**TINY, out=str(tmp_path), name="fresh", resume=True))
    assert not (tmp_path / "fresh").exists()  # nothing was created
    with pytest.raises(UserError, match="pass one of them"):
        load_config(TRMTrainConfig, None, resume=True, overwrite=True)


def test_checkpoints_of_another_task_or_variant_are_refused(trained, tmp_path):
    ckpt = trained / "checkpoints" / "best.pt"
    with pytest.raises(UserError, match="trained on sudoku-4x4, not sudoku-9x9"):
        load_checkpoint(ckpt, expect_signature="sudoku-9x9")
    with pytest.raises(UserError, match=r"different model variant.*mixer"):
        load_checkpoint(ckpt, expect_model={**load_checkpoint(ckpt)["model_config"], "mixer": "attention"})
    # resuming the run with another variant is refused, naming the difference
    with pytest.raises(UserError, match=r"made with another config \(differs in mixer\)"):
        train(TRMTrainConfig(**{**TINY, "mixer": "attention"}, out=str(trained.parent), name="tiny", resume=True))
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(UserError, match="not a reasonlab TRM checkpoint"):
        load_checkpoint(other)
    # a 6x6 CSV for a 4x4 checkpoint
    p = sudoku.generate_dataset(6, 12, 1, seed=0)[0]
    csv = tmp_path / "six.csv"
    q = "".join(str(v) if v else "." for v in p.question.reshape(-1))
    csv.write_text(f"source,question,answer,rating\nx,{q},{''.join(map(str, p.solution.reshape(-1)))},0\n")
    with pytest.raises(UserError, match="holds sudoku-6x6 puzzles but the checkpoint was trained on sudoku-4x4"):
        eval_checkpoint(ckpt, data_path=str(csv))


def test_eval_on_a_users_csv_matches_the_model(trained, tmp_path):
    puzzles = sudoku.generate_dataset(4, 6, 10, seed=123)
    lines = ["source,question,answer,rating"]
    for p in puzzles:
        q = "".join(str(v) if v else "." for v in p.question.reshape(-1))
        lines.append(f"x,{q},{''.join(map(str, p.solution.reshape(-1)))},0")
    csv = tmp_path / "four.csv"
    csv.write_text("\n".join(lines) + "\n")
    result = eval_checkpoint(trained, data_path=str(csv))
    assert result["count"] == 10 and result["task"] == "sudoku-4x4"
    model = load_model(load_checkpoint(trained))
    inputs = torch.stack([torch.from_numpy(sudoku.encode(p.question)) for p in puzzles])
    labels = torch.stack([torch.from_numpy(sudoku.encode(p.solution)) for p in puzzles])
    y, z = model.initial_state(10)
    for _ in range(3):
        out = model(inputs, torch.zeros(10, dtype=torch.long), y, z)
        y, z = out.y, out.z
    assert result["exact"] == pytest.approx(float((out.logits.argmax(-1) == labels).all(-1).float().mean()))


def test_solve_reports_the_grid_and_steps(trained):
    p = sudoku.generate_dataset(4, 6, 1, seed=7)[0]
    result = solve_puzzle(trained, sudoku.format_grid(p.question))
    grid = sudoku.parse_grid(result.text, size=4)
    # the same halting rule by hand: stop after the first step whose q_halt > 0, at most N_sup = 3 steps
    model = load_model(load_checkpoint(trained))
    inputs, ids = torch.from_numpy(sudoku.encode(p.question))[None], torch.zeros(1, dtype=torch.long)
    y, z = model.initial_state(1)
    used = 0
    with torch.no_grad():
        while used < 3:
            out = model(inputs, ids, y, z)
            y, z, used = out.y, out.z, used + 1
            if float(out.q_halt[0]) > 0:
                break
    assert (result.steps_used, result.halted) == (used, float(out.q_halt[0]) > 0)
    assert np.array_equal(grid, sudoku.decode(out.logits.argmax(-1)[0].numpy(), 4))
    assert result.valid == sudoku.solves(p.question, grid)
    forced = solve_puzzle(trained, sudoku.format_grid(p.question), max_steps=5, halt=False)
    assert forced.steps_used == 5 and not forced.halted


def test_cli_eval_solve_and_errors(trained, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["eval", str(trained)])
    assert result.exit_code == 0, result.output
    assert "sudoku-4x4: exact accuracy" in result.output and "by step:" in result.output
    result = runner.invoke(app, ["solve", str(trained), "--puzzle", "1..4 .4.. ..1. 4..2"])
    assert result.exit_code == 0, result.output
    assert "supervision steps used:" in result.output
    # user errors reach the root handler (`reasonlab.cli.main` prints them as one line and exits 2)
    result = runner.invoke(app, ["solve", str(trained), "--puzzle", "1..4x4.........."])
    assert isinstance(result.exception, UserError) and "character 'x' at cell 4" in str(result.exception)
    result = runner.invoke(app, ["solve", str(trained), "--puzzle", "." * 36])
    assert isinstance(result.exception, UserError) and "checkpoint solves 4x4" in str(result.exception)
    result = runner.invoke(app, ["eval", str(tmp_path / "nothing.pt")])
    assert isinstance(result.exception, UserError) and "does not exist" in str(result.exception)


def test_cli_train_runs_and_saves_the_resolved_config(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "max_steps": 4, "eval_every": 4}))
    result = CliRunner().invoke(app, ["train", "--config", str(cfg), "--out", str(tmp_path), "--name", "cli",
                                      "--set", "ema=0.5", "--n-sup", "2"])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "cli" / "config.yaml").read_text())
    assert (saved["ema"], saved["n_sup"], saved["max_steps"]) == (0.5, 2, 4)
    assert json.loads((tmp_path / "cli" / "summary.json").read_text())["train_steps"] == 4
    result = CliRunner().invoke(app, ["train", "--config", str(cfg), "--out", str(tmp_path), "--name", "x", "--n", "0"])
    assert isinstance(result.exception, UserError) and "n, T and n_sup must be >= 1" in str(result.exception)


@pytest.fixture
def record_train(monkeypatch):
    """Replace training by creating the run directory, as `train` does first: the CLI's resolution alone."""
    import reasonlab.systems.trm.training as training

    monkeypatch.setattr(training, "train", lambda config: Run.create(config.out, config.name, config).dir)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "mixer=mlp"], {"mixer": "mlp", "hidden_size": 512}),  # was silently reset to attention
        (["--set", "threads=1", "--set", "optimizer=adamw"], {"threads": 1, "optimizer": "adamw"}),
        (["--hidden-size", "48", "--n", "4", "--T", "2"], {"hidden_size": 48, "n": 4, "T": 2, "mixer": "attention"}),
        (["--set", "mixer=mlp", "--mixer", "attention"], {"mixer": "attention"}),  # a named option wins
        (["--config", "{cfg}", "--set", "lr=0.5"], {"mixer": "mlp", "size": 4, "lr": 0.5}),
    ],
    ids=["set-mixer", "set-threads", "named", "named-over-set", "file-then-set"],
)
def test_cli_train_saves_what_was_asked(record_train, tmp_path, args, expected):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    args = [a.format(cfg=cfg) for a in args]
    result = CliRunner().invoke(app, ["train", *args, "--out", str(tmp_path), "--name", "asked"])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "asked" / "config.yaml").read_text())
    assert {key: saved[key] for key in expected} == expected


def test_cli_train_refuses_unknown_options(record_train, tmp_path):
    result = CliRunner().invoke(app, ["train", "--set", "mixr=mlp", "--out", str(tmp_path)])
    assert isinstance(result.exception, UserError) and "no option 'mixr' (did you mean mixer?)" in str(result.exception)


def _sudoku_csv(path, count, seed):
    """A Sudoku-Extreme style CSV of generated 4x4 puzzles."""
    lines = ["source,question,answer,rating"]
    for p in sudoku.generate_dataset(4, 6, count, seed=seed):
        q = "".join(str(v) if v else "." for v in p.question.reshape(-1))
        lines.append(f"x,{q},{''.join(map(str, p.solution.reshape(-1)))},0")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# the heavy fields of a paper preset, shrunk so that one optimizer step takes well under a second
SHRINK = ["--hidden-size", "32", "--n", "2", "--T", "1", "--n-sup", "2", "--batch-size", "8", "--train-size", "16",
          "--max-steps", "1", "--eval-every", "1", "--set", "val_size=8", "--set", "test_size=8",
          "--set", "prefix_len=1", "--set", "ffn_multiple=16", "--set", "eval_batch_size=8", "--set", "device=cpu",
          "--set", "threads=1", "--set", "progress=false", "--set", "checkpoint_every=1"]


def test_cli_train_preset_reaches_the_saved_config(tmp_path):
    data = ["--data-path", _sudoku_csv(tmp_path / "train.csv", 24, 1), "--test-path", _sudoku_csv(tmp_path / "test.csv", 8, 2)]
    result = CliRunner().invoke(app, ["train", "--preset", "sudoku-extreme", *data, *SHRINK, "--out", str(tmp_path),
                                      "--name", "paper"])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "paper" / "config.yaml").read_text())
    # from the preset (the default config has mixer attention and no test size of 423k)
    assert (saved["mixer"], saved["test_size"], saved["eval_every"], saved["weight_decay"]) == ("mlp", 8, 1, 1.0)
    assert (saved["lr"], saved["warmup_steps"], saved["ema"], saved["num_heads"]) == (1e-4, 2000, 0.999, 8)
    # from the options
    assert (saved["hidden_size"], saved["n"], saved["T"], saved["batch_size"], saved["max_steps"]) == (32, 2, 1, 8, 1)
    assert json.loads((tmp_path / "paper" / "summary.json").read_text())["train_steps"] == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], {"mixer": "attention", "hidden_size": 512, "task": "sudoku", "size": 9, "max_steps": 65000}),
        (["--preset", "cpu"], {"size": 6, "givens": 12, "hidden_size": 32, "T": 2, "n": 3, "time_budget_s": 120.0}),
        (["--preset", "cpu", "--set", "hidden_size=48", "--T", "3"], {"size": 6, "hidden_size": 48, "T": 3}),
        (["--preset", "maze-hard", "--data-path", "a.csv", "--test-path", "b.csv"],
         {"task": "maze", "n": 4, "val_size": 0, "data_path": "a.csv", "test_path": "b.csv"}),
        (["--preset", "arc-agi-2", "--set", "arc_tasks=2"], {"arc_version": "latest", "arc_tasks": 2, "max_steps": 700000}),
    ],
    ids=["default", "cpu", "cpu-overridden", "maze-hard", "arc-agi-2"],
)
def test_cli_train_saves_the_preset_and_what_overrides_it(record_train, tmp_path, args, expected):
    result = CliRunner().invoke(app, ["train", *args, "--out", str(tmp_path), "--name", "asked"])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "asked" / "config.yaml").read_text())
    assert {key: saved[key] for key in expected} == expected


def test_cli_train_refuses_an_unknown_preset_or_a_paper_preset_without_its_data(record_train, tmp_path):
    result = CliRunner().invoke(app, ["train", "--preset", "sudoku-extrem", "--out", str(tmp_path)])
    message = str(result.exception)
    assert isinstance(result.exception, UserError) and "\n" not in message
    assert message == ("--preset 'sudoku-extrem' is unknown (did you mean 'sudoku-extreme'?): use one of default, "
                       "cpu, sudoku-extreme, maze-hard, arc-agi, arc-agi-2")
    for args in (["--preset", "maze-hard"], ["--preset", "sudoku-extreme", "--data-path", "train.csv"]):
        result = CliRunner().invoke(app, ["train", *args, "--out", str(tmp_path)])
        assert isinstance(result.exception, UserError), result.output
        assert "pass --data-path TRAIN.csv and --test-path TEST.csv" in str(result.exception)
    assert not list(tmp_path.iterdir())  # refused before any run directory was made
    assert all(name in TRAIN_PRESET_HELP for name in TRAIN_PRESETS)


# every value the TRM spec (section 2 and its table) gives for the paper's runs
SPEC_COMMON = dict(hidden_size=512, num_heads=8, expansion=4.0, num_layers=2, T=3, n_sup=16, halt_exploration=0.1,
                   batch_size=768, lr=1e-4, warmup_steps=2000, beta1=0.9, beta2=0.95, ema=0.999, bf16=True,
                   optimizer="adam_atan2", prefix_len=16, ffn_multiple=256, halt_weight=0.5, loss_type="stablemax")
SPEC_RUNS = {
    "sudoku-extreme": dict(task="sudoku", mixer="mlp", n=6, weight_decay=1.0, puzzle_emb_lr=1e-4,
                           puzzle_emb_weight_decay=1.0, max_steps=65_000, eval_every=6_500, train_size=1000,
                           test_size=423_000),
    "maze-hard": dict(task="maze", mixer="attention", n=4, weight_decay=1.0, puzzle_emb_lr=1e-4,
                      puzzle_emb_weight_decay=1.0, max_steps=65_000, eval_every=6_500, train_size=1000, test_size=1000),
    "arc-agi": dict(task="arc", arc_version="arcagi", mixer="attention", n=4, weight_decay=0.1, puzzle_emb_lr=1e-2,
                    puzzle_emb_weight_decay=0.1, max_steps=520_000, eval_every=52_000, arc_augmentations=1000),
    "arc-agi-2": dict(task="arc", arc_version="latest", mixer="attention", n=4, weight_decay=0.1, puzzle_emb_lr=1e-2,
                      puzzle_emb_weight_decay=0.1, max_steps=700_000, eval_every=70_000, arc_augmentations=1000),
}


@pytest.mark.parametrize("name", list(SPEC_RUNS))
def test_paper_presets_hold_the_specs_numbers(name):
    preset = TRAIN_PRESETS[name]
    expected = {**SPEC_COMMON, **SPEC_RUNS[name], "data_path": None, "test_path": None, "augment": True}
    assert {key: getattr(preset, key) for key in expected} == expected


def test_the_first_preset_is_the_default_config_and_cpu_is_the_trm_arm_of_the_run_of_record(tmp_path):
    assert list(TRAIN_PRESETS)[:2] == ["default", "cpu"] and TRAIN_PRESETS["default"] == TRMTrainConfig()
    arm = PRESETS["main"].arm_config("trm", 0, "runs").model_dump()
    cpu = TRAIN_PRESETS["cpu"].model_dump()
    assert {key for key in cpu if cpu[key] != arm[key]} == {"progress"}
