"""mem-agent (Dria, 2025): an LLM that keeps an Obsidian-like markdown memory through sandboxed Python tools.

    from reasonlab.llm import load_llm
    from reasonlab.systems.memagent import Agent, Memory
    memory = Memory.from_files("memory", {"user.md": "# User\\n- city: Paris\\n"})
    Agent(load_llm("hf:embedded"), memory).run("Where do I live?").reply

Modules: config (AgentConfig, the environment, experiment and training configs, PRESETS), memory (the folder,
confinement, limits), tools (the tool API and `run_tools` in reasonlab.sandbox), turns (think/python/reply
parsing and the turn grammar), prompts (every prompt), agent (the loop), mcp_server (`use_memory_agent` over
MCP), data (generated memories and tasks), judges (deterministic and LLM judges), evaluation (the benchmark:
solvers, scores, format statistics and cost), rag (the MiniLM-RAG baseline), environment (the RL environment),
training (SFT on expert episodes, GSPO), trajectories (the scripted agent's episodes as SFT examples),
handwritten (the hand-written held-out set), experiment (every arm over seeds, the quick demo and its headline,
the trained agent's table), cli (`reasonlab memagent chat | serve-mcp | generate | bench | train | sft`). See docs/memagent.md.
"""

from reasonlab.systems import lazy_exports

# imported on first use (PEP 562): the CLI and the MCP server start without torch
EXPORTS = {
    "memory": ["Memory", "MemoryAccessError", "MemoryLimits", "path_problem", "render_tree", "wiki_links"],
    "tools": ["TOOL_NAMES", "MemoryTools", "ToolRun", "run_tools", "sandbox_limits"],
    "turns": ["TURN_GRAMMAR", "AgentTurn", "cut_action", "drop_think", "parse_turn", "turn_sampling"],
    "prompts": ["FEW_SHOT", "SYSTEM_PROMPT"],
    "agent": ["Agent", "AgentResult", "TurnRecord"],
    "config": ["PRESETS", "SFT_PRESETS", "TRAINED_AGENT", "TRAIN_PRESETS", "AgentConfig", "ExperimentConfig",
               "MemAgentEnvConfig", "SFTTrainConfig", "TrainConfig"],
    "mcp_server": ["answer_question", "build_server", "read_filters"],
    "data": ["BENCH_POOLS", "TRAIN_POOLS", "BenchTask", "MemoryScenario", "generate_bench", "generate_memory"],
    "judges": [
        "JudgeCase",
        "LLMJudge",
        "Verdict",
        "agreement",
        "judge_case",
        "load_hand_labels",
        "parse_facts",
    ],
    "evaluation": [
        "AgentSolver",
        "Attempt",
        "BenchReport",
        "Outcome",
        "run_bench",
        "scripted_policy",
        "summarize",
    ],
    "rag": ["RAGSolver", "chunk_memory"],
    "environment": ["MemAgentEnvironment", "reward_table", "turn_shaping"],
    "experiment": ["arm_row", "demo_headline", "run_experiment", "trained_bar"],
    "training": ["train", "train_sft"],
    "trajectories": ["Trajectory", "record_trajectories", "trajectory_examples", "training_tasks"],
    "handwritten": ["load_handwritten"],
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(name for names in EXPORTS.values() for name in names)
