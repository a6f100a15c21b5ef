"""Small-scale mem-agent reproduction on CPU: the md-memory-bench-style mini benchmark and an RL smoke run.

    python -m reasonlab.systems.memagent.experiment bench --llm llamacpp:embedded --out runs/memagent
    python -m reasonlab.systems.memagent.experiment rl-smoke --out runs/memagent
    reasonlab demo --only memagent                                                  # quick version

`bench` arms, all on the same generated tasks: `oracle` and `wrong` (scripted policies through the real agent
loop and sandbox: they prove the scorer gives 100% and 0%), `agent` (the LLM as the memory agent), `rag`
(MiniLM top-k chunks + one LLM answer) and `judge` (the LLM as a CORRECT/INCORRECT judge, scored against the
hand labels beside the deterministic judges). `rl-smoke` runs GSPO for a few iterations on a randomly
initialised Gemma-3-config model with the real Gemma tokenizer (full Gemma RL is too slow for CPU CI); the
turn format is forced by a short grammar so that an untrained model completes turns at all.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasonlab.demo import register_demo
from reasonlab.runs import Run, atomic_write_text

__all__ = [
    "ARMS",
    "PRESETS",
    "QUICK",
    "SMOKE_GRAMMAR",
    "rl_smoke",
    "run_experiment",
    "smoke_setup",
    "tiny_gemma_policy",
]

ARMS = ("oracle", "wrong", "agent", "rag", "judge")
# 20 tasks: 5 per category over 2 memories. On the shared 2-core CPU llama.cpp took ~2.2 s to prefill the
# 788-token first prompt and 0.05 s per new token, but 0.17 s per token under TURN_GRAMMAR (it checks the
# 262k-token vocabulary every step): the presets run unconstrained, 4 turns of 48 tokens (the mini run took
# 16 minutes there; pass "constrained": True, or --constrained on the command line, for the grammar). One
# llama.cpp thread: two threads spin-wait on a CPU shared with other jobs.
PRESETS: dict[str, dict[str, Any]] = {
    "mini": {"seed": 0, "memories": 2, "tasks_per_category": 5, "rag_k": 3, "n_threads": 1,
             "agent": {"max_turns": 4, "max_tokens_per_turn": 48, "constrained": False}},
}
# the demo: 4 tasks, 2 turns per episode (with 3 turns it took 226 s on the shared CPU, over the 3-minute budget)
QUICK: dict[str, Any] = {**PRESETS["mini"], "memories": 1, "tasks_per_category": 1,
                         "agent": {"max_turns": 2, "max_tokens_per_turn": 48, "constrained": False}}

# the turn format with short bounded fields, so that a random model finishes a turn in ~20 tokens; the
# choices it must make (code or reply, user.md or not, a question mark or not) give rewards some variance
SMOKE_GRAMMAR = r"""root ::= "<think>" [a-z]{0,2} "</think>\n" action
action ::= "<python>" call "</python>" | "<python></python>\n<reply>" [a-z]{1,3} "?"? "</reply>"
call ::= [a-z]{1,4} " = " ("read_file(\"user.md\")" | "list_files()")
"""


def _load(llm_spec: str, preset: dict[str, Any]) -> Any:
    from reasonlab.llm import load_llm

    threads = preset.get("n_threads")
    return load_llm(llm_spec, **({"n_threads": threads} if llm_spec.startswith("llamacpp") and threads else {}))


def _solver(arm: str, llm: Any, preset: dict[str, Any], embedder: Any) -> Any:
    from reasonlab.systems.memagent.agent import AgentConfig
    from reasonlab.systems.memagent.bench import AgentSolver, scripted_policy
    from reasonlab.systems.memagent.rag import RAGSolver

    config = AgentConfig(**preset["agent"])
    if arm in ("oracle", "wrong"):
        # a scripted policy's "tokens" are characters: lift the per-turn budget, keep the loop as it is
        scripted = config.model_copy(update={"max_tokens_per_turn": 4096, "max_turns": max(config.max_turns, 5)})
        return AgentSolver(policy_for_task=lambda task: scripted_policy(task, arm == "oracle"), config=scripted,
                           name=arm)
    if arm == "agent":
        return AgentSolver(llm, config)
    if arm == "rag":
        return RAGSolver(llm, embedder, k=preset["rag_k"])
    raise ValueError(f"unknown arm {arm!r}: use {', '.join(ARMS)}")


def run_experiment(preset: dict[str, Any], llm_spec: str, out: Path, tag: str, arms: Sequence[str] = ARMS,
                   llm: Any = None, embedder: Any = None) -> Path:
    """Run each arm on the same tasks; log every judged task; summarise scores, cost and judge agreement."""
    from reasonlab.systems.memagent.bench import run_bench
    from reasonlab.systems.memagent.data import generate_bench
    from reasonlab.systems.memagent.environment import reward_table
    from reasonlab.systems.memagent.judges import LLMJudge, agreement, judge_case, load_hand_labels

    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        raise ValueError(f"unknown arms {unknown}: use {', '.join(ARMS)}")
    memories, tasks = generate_bench(preset["seed"], preset["memories"], preset["tasks_per_category"])
    run = Run.create(out, tag, {"preset": preset, "llm": llm_spec, "arms": list(arms)}, exist_ok=True)
    atomic_write_text(run.dir / "tasks.jsonl", "".join(json.dumps(t.to_dict()) + "\n" for t in tasks))
    if llm is None and set(arms) & {"agent", "rag", "judge"}:
        llm = _load(llm_spec, preset)
    labels = load_hand_labels()
    summary: dict[str, Any] = {"llm": llm_spec, "tasks": len(tasks), "arms": {},
                               "judge_agreement": {"deterministic": agreement(labels, judge_case)},
                               "reward_table": reward_table()}
    for arm in arms:
        if arm == "judge":
            summary["judge_agreement"]["llm"] = agreement(labels, LLMJudge(llm).judge)
            continue
        before = llm.usage.as_dict() if llm is not None else None
        report = run_bench(tasks, memories, _solver(arm, llm, preset, embedder),
                           on_task=lambda outcome, arm=arm: run.log({"kind": "task", "arm": arm, **outcome.to_dict()}),
                           progress=True)
        summary["arms"][arm] = report.summary
        if before is not None and arm in ("agent", "rag"):
            summary["arms"][arm]["llm_calls"] = llm.usage.calls - before["calls"]
    run.write_summary(summary)
    return run.dir


# RL smoke run


def tiny_gemma_policy(seed: int = 0, hidden_size: int = 16, layers: int = 2) -> Any:
    """A randomly initialised Gemma-3 text model with the real Gemma tokenizer (262k vocabulary), as HFPolicy."""
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    from reasonlab.llm.embedded import embedded_gemma_dir

    tokenizer = AutoTokenizer.from_pretrained(embedded_gemma_dir())
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=1, head_dim=hidden_size // 2,
        max_position_embeddings=4096, sliding_window=256, layer_types=["sliding_attention"] * (layers - 1)
        + ["full_attention"], pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    from reasonlab.llm.hf import HFPolicy

    return HFPolicy(Gemma3ForCausalLM(config), tokenizer, name="hf:tiny-gemma3", device="cpu")


def smoke_setup(seed: int = 0, max_turns: int = 2, policy: Any = None) -> tuple[Any, Any, list[Any], Any]:
    """(policy, environment, tasks, RLConfig) of the RL smoke run: GSPO with the paper's tiny clip range."""
    from reasonlab.llm import SamplingParams
    from reasonlab.systems.memagent.agent import AgentConfig
    from reasonlab.systems.memagent.data import generate_bench
    from reasonlab.systems.memagent.environment import MemAgentEnvConfig, MemAgentEnvironment
    from reasonlab.train.rl import RLConfig

    policy = policy or tiny_gemma_policy(seed)
    memories, tasks = generate_bench(seed, n_memories=1, tasks_per_category=1)
    tasks = [t for t in tasks if t.category in ("retrieval", "clarification")]
    env_config = MemAgentEnvConfig(agent=AgentConfig(max_turns=max_turns, few_shot=False))
    environment = MemAgentEnvironment(policy, memories, env_config)
    config = RLConfig(
        loss_type="gspo", iterations=2, tasks_per_iteration=2, group_size=2, max_segments=max_turns,
        sampling=SamplingParams(temperature=1.0, max_tokens=64, grammar=SMOKE_GRAMMAR, stop=["<result>"]),
        learning_rate=1e-3, epsilon_low=3e-4, epsilon_high=4e-4, micro_batch_size=8, seed=seed, progress=False,
    )
    return policy, environment, tasks, config


def rl_smoke(out: Path | None = None, iterations: int = 2, seed: int = 0, threads: int | None = 1) -> list[dict[str, Any]]:
    """GSPO for `iterations` on the tiny model; returns the per-iteration metrics (and logs a run under out).

    One torch thread by default: on a shared 2-core CPU, two threads made this run 4x slower (spin-waiting)."""
    import torch

    from reasonlab.train.rl import train

    if threads is not None:
        torch.set_num_threads(threads)
    policy, environment, tasks, config = smoke_setup(seed)
    config = config.model_copy(update={"iterations": iterations})
    run = Run.create(out, "rl-smoke", config, exist_ok=True) if out is not None else None
    try:
        history = train(config, policy, environment, tasks, run=run)
    finally:
        environment.close()
    if run is not None:
        run.write_summary({"history": history})
    return history


@register_demo("memagent", "mem-agent mini-bench: scripted oracle/wrong, Gemma-270M agent and MiniLM-RAG (llamacpp)")
def quick(run_root: Path) -> Path:
    return run_experiment(QUICK, "llamacpp:embedded", Path(run_root), "memagent-quick", ("oracle", "wrong", "agent", "rag"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=["bench", "rl-smoke"], help="which experiment")
    parser.add_argument("--llm", default="llamacpp:embedded", help="model spec")
    parser.add_argument("--preset", default="mini", choices=sorted(PRESETS), help="benchmark size")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated: {', '.join(ARMS)}")
    parser.add_argument("--out", default="runs/memagent", help="root folder of runs")
    parser.add_argument("--tag", default="memagent-bench", help="run name")
    parser.add_argument("--iterations", type=int, default=3, help="rl-smoke iterations")
    args = parser.parse_args()
    if args.experiment == "rl-smoke":
        for metrics in rl_smoke(Path(args.out), args.iterations):
            print(json.dumps({k: metrics[k] for k in ("iteration", "reward_mean", "loss", "grad_norm")}))
        return
    run_dir = run_experiment(PRESETS[args.preset], args.llm, Path(args.out), args.tag, tuple(args.arms.split(",")))
    print(json.dumps(json.loads((run_dir / "summary.json").read_text()), indent=1))


if __name__ == "__main__":
    main()
