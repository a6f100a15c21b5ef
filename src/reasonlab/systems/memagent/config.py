"""The configs of mem-agent: the agent loop (`AgentConfig`), the RL environment (`MemAgentEnvConfig`), the
mini-benchmark experiment (`ExperimentConfig`, `PRESETS`) and RL training (`TrainConfig`, `TRAIN_PRESETS`).

Importing this module loads no model code: the CLI resolves configs before it imports torch.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from reasonlab.llm.base import SamplingParams
from reasonlab.trackers import REPORT_TO_DESCRIPTION, TrackerName

__all__ = ["AGENT_PRESETS", "ARMS", "PRESETS", "SFT_PRESETS", "SMOKE_GRAMMAR", "TRAINED_AGENT", "TRAIN_PRESETS", "TRAIN_SEED_MIN",
           "AgentConfig", "Arm", "ExperimentConfig", "MemAgentEnvConfig", "SFTTrainConfig", "TrainConfig"]

Arm = Literal["oracle", "wrong", "agent", "rag", "judge"]
Category = Literal["retrieval", "update", "clarification", "filter"]
CATEGORY_NAMES: list[Category] = ["retrieval", "update", "clarification", "filter"]
# benchmark seeds are 0-999; training data (SFT episodes, RL tasks) comes from seeds >= TRAIN_SEED_MIN, whose
# generated memories (seed * 1000 + m) never meet a benchmark memory's
TRAIN_SEED_MIN = 1000
ARMS: tuple[Arm, ...] = ("oracle", "wrong", "agent", "rag", "judge")


class AgentConfig(BaseModel):
    """Options of the agent loop; defaults follow the spec (turn cap 8, drop old think blocks, CPU 5 s)."""

    max_turns: int = Field(8, ge=1, description="turn cap (spec: 8 in training, 20 in the MCP agent)")
    max_tokens_per_turn: int = Field(512, ge=1, description="new tokens per assistant turn")
    temperature: float = Field(0.0, ge=0.0, description="0 = greedy")
    seed: int | None = Field(0, description="sampling seed")
    constrained: bool = Field(True, description="force the turn format with TURN_GRAMMAR")
    drop_old_think: bool = Field(True, description="drop <think> from earlier turns (as Qwen3 requires)")
    few_shot: bool = Field(True, description="start the prompt with the example episodes (base models)")
    system: Literal["full", "compact"] = Field(
        "full", description="instructions: full (every tool and rule) or compact (the trained agent's short prompt)")
    max_result_chars: int = Field(4000, ge=100, description="longest <result> shown to the model")
    tool_wall_seconds: float = Field(10.0, gt=0, description="wall-clock limit of one code block")
    tool_cpu_seconds: int = Field(5, ge=1, description="CPU limit of one code block (spec: 5 s)")
    tool_memory_mb: int = Field(512, ge=64, description="address-space limit of one code block (spec: 512 MB)")
    sandbox_mode: Literal["auto", "unsafe-hook-only"] = Field(
        "auto", description="sandbox of the model's code: auto (every kernel layer, fails closed) or "
        "unsafe-hook-only (no namespaces; the CLI needs --unsafe-sandbox)")


class MemAgentEnvConfig(BaseModel):
    """Reward constants (spec §7; [early] values unless a field says otherwise) and the agent's options."""

    agent: AgentConfig = Field(default_factory=AgentConfig, description="turn cap T = agent.max_turns")
    success_reward: float = Field(2.0, description="reward of a judged success (the paper doubled it)")
    python_step_reward: float = Field(0.15, description="python-step reward at turn 0, decaying as 1 - 2t/T")
    user_md_bonus: float = Field(0.2, description="turn-0 bonus for reading or checking user.md")
    cap_penalty: float = Field(0.2, ge=0, description="penalty when the episode hits the turn cap")
    decay_floor: float = Field(-1.0, le=0, description="floor of 1 - 2t/T; 0 = the early code's max(0, .)")
    shaping_min: float = Field(-1.0, description="lower clip of an episode's cumulative shaping")
    shaping_max: float = Field(1.0, description="upper clip of an episode's cumulative shaping")
    mask_after_action: bool = Field(True, description="do not train tokens written after the action")


class ExperimentConfig(BaseModel):
    """`reasonlab memagent bench`: every arm on the same generated tasks, once per generator seed.

    Arms: `oracle` and `wrong` (scripted policies through the real agent loop and sandbox: they prove the
    scorer gives 100% and 0%), `agent` (the LLM as the memory agent), `rag` (MiniLM top-k chunks and one LLM
    answer) and `judge` (the LLM as a CORRECT/INCORRECT judge, scored against the hand labels)."""

    llm: str = Field("llamacpp:embedded", description="model spec of the agent, RAG and judge arms")
    arms: list[Arm] = Field(default_factory=lambda: list(ARMS), min_length=1, description="arms to run")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="benchmark generator seeds")
    memories: int = Field(2, ge=1, description="generated memories per seed")
    tasks_per_category: int = Field(5, ge=1, description="tasks of each category per seed")
    rag_k: int = Field(3, ge=1, description="chunks the RAG baseline retrieves")
    n_threads: int | None = Field(None, ge=1, description="llamacpp threads [default: the global --threads]")
    agent: AgentConfig = Field(default_factory=AgentConfig, description="the agent arm's loop")
    tasks: Literal["generated", "handwritten"] = Field(
        "generated", description="generated (the generator, per seed) or handwritten (the fixed hand-written "
        "set in handwritten.jsonl; seeds must then be one)")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)

    @model_validator(mode="after")
    def _one_seed_for_handwritten(self) -> ExperimentConfig:
        if self.tasks == "handwritten" and len(self.seeds) != 1:
            raise ValueError("tasks=handwritten is one fixed set: give one seed")
        return self


# the turn format with short bounded fields, so that an untrained model finishes a turn in ~20 tokens; the
# choices it must make (code or reply, user.md or not, a question mark or not) give rewards some variance
SMOKE_GRAMMAR = r"""root ::= "<think>" [a-z]{0,2} "</think>\n" action
action ::= "<python>" call "</python>" | "<python></python>\n<reply>" [a-z]{1,3} "?"? "</reply>"
call ::= [a-z]{1,4} " = " ("read_file(\"user.md\")" | "list_files()")
"""


def _smoke_rl() -> dict[str, Any]:
    return {"loss_type": "gspo", "iterations": 2, "tasks_per_iteration": 2, "group_size": 2, "max_segments": 2,
            "sampling": SamplingParams(temperature=1.0, max_tokens=64, grammar=SMOKE_GRAMMAR, stop=["<result>"]),
            "learning_rate": 1e-3, "epsilon_low": 3e-4, "epsilon_high": 4e-4, "micro_batch_size": 8,
            "progress": False}


class TrainConfig(BaseModel):
    """`reasonlab memagent train`: GSPO on generated memory tasks (`reasonlab.train.rl`, one segment per turn).

    `rl` holds `RLConfig` fields (loss, iterations, group size, sampling, ...); `rl.seed` follows `seed`."""

    policy: str = Field("hf:embedded", description="a trainable model spec (hf:embedded or hf:PATH)")
    seed: int = Field(TRAIN_SEED_MIN, ge=TRAIN_SEED_MIN, description="seeds the training tasks (>= 1000: training "
                      "memories and wordings, never the benchmark's) and the RL run")
    memories: int = Field(1, ge=1, description="generated memories")
    tasks_per_category: int = Field(1, ge=1, description="generated tasks of each category")
    categories: list[Literal["retrieval", "update", "clarification", "filter"]] = Field(
        default_factory=lambda: ["retrieval", "clarification"], min_length=1, description="task categories trained on")
    environment: MemAgentEnvConfig = Field(
        default_factory=lambda: MemAgentEnvConfig(agent=AgentConfig(max_turns=2, few_shot=False)),
        description="rewards and the agent's loop (turn cap T = environment.agent.max_turns)")
    rl: dict[str, Any] = Field(default_factory=_smoke_rl, description="RLConfig fields (GSPO with the paper's clip range "
                                                             "3e-4 / 4e-4, the turn format forced by a grammar)")
    lora: dict[str, Any] | None = Field(None, description="LoRAConfig fields (reasonlab.train.sft): train a fresh LoRA "
                                        "adapter instead of all weights, merged into the saved model; with rl.beta > 0 "
                                        "the KL reference is the model with the adapter off (no second copy)")
    torch_threads: int | None = Field(None, ge=1, description="torch threads (None: the global `reasonlab --threads`, "
                                                              "cores - 1 by default)")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)


# the trained agent's loop: the compact prompt without few-shot episodes, short unconstrained turns
TRAINED_AGENT = AgentConfig(few_shot=False, system="compact", max_turns=6, max_tokens_per_turn=128, constrained=False)
# the agent loop of `chat` and `serve-mcp`: default (the full prompt with the few-shot episodes) or trained
AGENT_PRESETS: dict[str, AgentConfig] = {"default": AgentConfig(), "trained": TRAINED_AGENT}


# 20 tasks: 5 per category over 2 memories. On the shared 2-core CPU llama.cpp took ~2.2 s to prefill the
# 788-token first prompt and 0.05 s per new token, but 0.17 s per token under TURN_GRAMMAR (it checks the
# 262k-token vocabulary every step): the presets run unconstrained, 4 turns of 48 tokens (pass
# --constrained for the grammar).
_BENCH_AGENT = AgentConfig(max_turns=4, max_tokens_per_turn=48, constrained=False)

PRESETS: dict[str, ExperimentConfig] = {
    "mini": ExperimentConfig(agent=_BENCH_AGENT),  # the run of record
    # 4 tasks, 2 turns per episode: seconds for the scripted arms (tests, a first look)
    "quick": ExperimentConfig(memories=1, tasks_per_category=1,
                              agent=_BENCH_AGENT.model_copy(update={"max_turns": 2})),
    # `reasonlab demo`: the run of record's 20 tasks without the LLM as agent or judge (minutes of CPU each)
    "demo": ExperimentConfig(arms=["oracle", "wrong", "rag"], agent=_BENCH_AGENT),
    # the SFT run of record's model (reasonlab memagent sft) as the agent, with its own compact prompt
    "trained": ExperimentConfig(llm="hf:runs/memagent/sft/model", arms=["agent"], agent=TRAINED_AGENT),
    # the hand-written held-out set (32 tasks in another style): the scripted arms and the SFT model as agent
    "handwritten": ExperimentConfig(llm="hf:runs/memagent/sft/model", arms=["oracle", "wrong", "agent"],
                                    agent=TRAINED_AGENT, tasks="handwritten"),
}

def _gspo_rl() -> dict[str, Any]:
    # 24 iterations of 2 tasks x 4 episodes on a LoRA adapter, with a KL term to the SFT model (the adapter off);
    # the paper's clip range. Full-weight Adam steps at 5e-6 broke the SFT agent in 16 iterations (RESULTS; our
    # reading: every row of the tied 262k-token embedding moves by about the step size each step)
    return {"loss_type": "gspo", "iterations": 24, "tasks_per_iteration": 2, "group_size": 4,
            "sampling": SamplingParams(temperature=1.0, max_tokens=TRAINED_AGENT.max_tokens_per_turn, stop=["<result>"]),
            "learning_rate": 2e-5, "beta": 0.04, "epsilon_low": 3e-4, "epsilon_high": 4e-4, "micro_batch_size": 4,
            "checkpoint_every": 2}


def _gspo_full_rl() -> dict[str, Any]:
    # the first recipe: 16 iterations of 1 task x 4 episodes, full weights, no KL term (it broke the SFT agent)
    rl = {key: value for key, value in _gspo_rl().items() if key != "beta"}
    return {**rl, "iterations": 16, "tasks_per_iteration": 1, "learning_rate": 5e-6, "checkpoint_every": 4}


def _gspo_lora() -> dict[str, Any]:
    # the attention and MLP projections; the embedding (tied to the output layer) stays as SFT left it
    return {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}


TRAIN_PRESETS: dict[str, TrainConfig] = {
    "smoke": TrainConfig(),
    # GSPO from the SFT run of record's model, on training seeds (2000: other memories than the SFT episodes')
    "gspo": TrainConfig(policy="hf:runs/memagent/sft/model", seed=2000, memories=4, tasks_per_category=4,
                        categories=list(CATEGORY_NAMES), environment=MemAgentEnvConfig(agent=TRAINED_AGENT.model_copy()),
                        rl=_gspo_rl(), lora=_gspo_lora()),
}
# the first recipe, kept to reproduce what RESULTS reports of it: full-weight steps, no KL term
TRAIN_PRESETS["gspo-full"] = TRAIN_PRESETS["gspo"].model_copy(update={"rl": _gspo_full_rl(), "lora": None})


def _sft_defaults() -> dict[str, Any]:
    # full fine-tuning, one epoch over ~500 turn examples (160 episodes): ~125 optimizer steps of 4. Measured on
    # the 2-core CPU: ~4 s per example of ~400 tokens (Gemma-3-270M, 2 threads; bf16 autocast no faster)
    return {"backend": "plain", "epochs": 1.0, "batch_size": 4, "gradient_accumulation_steps": 1,
            "learning_rate": 4e-5, "warmup_ratio": 0.05, "max_length": 2048, "checkpoint_every": 40}


def _check_training_seeds(seeds: list[int]) -> list[int]:
    low = [seed for seed in seeds if seed < TRAIN_SEED_MIN]
    if low:
        raise ValueError(f"seed {low[0]} is a benchmark seed: training seeds start at {TRAIN_SEED_MIN}")
    return seeds


class SFTTrainConfig(BaseModel):
    """`reasonlab memagent sft`: supervised fine-tuning on the scripted correct agent's episodes.

    Tasks come from the generator on training seeds (>= 1000, disjoint from every benchmark seed), with their
    questions reworded; `sft` holds `reasonlab.train.sft.SFTConfig` fields (plain backend, full fine-tuning
    unless `sft.lora` is set; a LoRA adapter is merged into the saved model)."""

    policy: str = Field("hf:embedded", description="a trainable model spec (hf:embedded or hf:PATH)")
    seeds: list[int] = Field(default_factory=lambda: list(range(1000, 1050)), min_length=1,
                             description="generator seeds of the training tasks (each >= 1000)")
    memories_per_seed: int = Field(1, ge=1, description="generated memories per seed")
    tasks_per_category: int = Field(3, ge=1, description="tasks of each category per seed (3 covers every kind: "
                                                         "0/1/2 hops, both missing kinds, the three filter tiers)")
    episodes: int | None = Field(160, ge=1, description="a seeded sample of this many tasks (None: every task)")
    categories: list[Category] = Field(default_factory=lambda: list(CATEGORY_NAMES), min_length=1,
                                       description="task categories trained on")
    reworded: bool = Field(True, description="reword questions into other templates than the benchmark's")
    held_out: float = Field(0.05, ge=0, lt=1, description="share of episodes kept for the held-out loss")
    agent: AgentConfig = Field(default_factory=lambda: TRAINED_AGENT.model_copy(),
                               description="the trained agent's loop (its prompt is what the examples hold)")
    sft: dict[str, Any] = Field(default_factory=_sft_defaults, description="SFTConfig fields (reasonlab.train.sft)")
    seed: int = Field(0, description="seeds the held-out split and the SFT run")
    torch_threads: int | None = Field(None, ge=1, description="torch threads (None: the global `reasonlab --threads`)")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)

    _seeds = field_validator("seeds")(_check_training_seeds)


SFT_PRESETS: dict[str, SFTTrainConfig] = {
    # the run of record: 160 of 600 tasks on 50 training memories, full fine-tuning of Gemma-3-270M (~40 min)
    "record": SFTTrainConfig(),
    # seconds on a tiny model (tests): 1 seed, 1 task per category, 2 steps
    "smoke": SFTTrainConfig(seeds=[1000], memories_per_seed=1, tasks_per_category=1, episodes=None,
                            sft={**_sft_defaults(), "max_steps": 2, "batch_size": 2, "gradient_accumulation_steps": 1,
                                 "checkpoint_every": 1, "learning_rate": 1e-3}),
}
