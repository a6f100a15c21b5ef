"""The configs of mem-agent: the agent loop (`AgentConfig`), the RL environment (`MemAgentEnvConfig`), the
mini-benchmark experiment (`ExperimentConfig`, `PRESETS`) and RL training (`TrainConfig`, `TRAIN_PRESETS`).

Importing this module loads no model code: the CLI resolves configs before it imports torch.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from reasonlab.llm.base import SamplingParams
from reasonlab.trackers import REPORT_TO_DESCRIPTION, TrackerName

__all__ = ["ARMS", "PRESETS", "SMOKE_GRAMMAR", "TRAIN_PRESETS", "AgentConfig", "Arm", "ExperimentConfig",
           "MemAgentEnvConfig", "TrainConfig"]

Arm = Literal["oracle", "wrong", "agent", "rag", "judge"]
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
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)


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
    seed: int = Field(0, description="seeds the generated tasks and the RL run")
    memories: int = Field(1, ge=1, description="generated memories")
    tasks_per_category: int = Field(1, ge=1, description="generated tasks of each category")
    categories: list[Literal["retrieval", "update", "clarification", "filter"]] = Field(
        default_factory=lambda: ["retrieval", "clarification"], min_length=1, description="task categories trained on")
    environment: MemAgentEnvConfig = Field(
        default_factory=lambda: MemAgentEnvConfig(agent=AgentConfig(max_turns=2, few_shot=False)),
        description="rewards and the agent's loop (turn cap T = environment.agent.max_turns)")
    rl: dict[str, Any] = Field(default_factory=_smoke_rl, description="RLConfig fields (GSPO with the paper's clip range "
                                                             "3e-4 / 4e-4, the turn format forced by a grammar)")
    torch_threads: int | None = Field(None, ge=1, description="torch threads (None: the global `reasonlab --threads`, "
                                                              "cores - 1 by default)")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)


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
}

TRAIN_PRESETS: dict[str, TrainConfig] = {"smoke": TrainConfig()}
