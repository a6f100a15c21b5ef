"""Moloch's Bargain (arXiv 2510.06105): language models tuned to win an audience's votes drift into
misrepresentation and fabrication. A market round: the agent writes two messages about an anchor (a product card,
a candidate profile, a news item), an audience votes between them, the winners (RFT) or the winners plus the
voters' thoughts (TFB) fine-tune the agent; probes measure what the tuned agent now says that the anchor does not.

    from reasonlab.systems.moloch import PRESETS, train

    run_dir = train(PRESETS["market"].model_copy(update={"method": "rft", "seed": 0}))

Modules: anchors and arenas (offline generators, prompts, message extraction, anchor files), audience (LLM
personas with per-voter A/B shuffling and a position-bias check; the rule-based market of spec 6B and its
control), probes (fabrication, misrepresentation, populism, unsafe encouragement, an LLM judge, rates, win rates),
datasets (RFT and TFB), rounds (one round with a crash-safe contest log), config (presets), training (rounds of
generate -> vote -> LoRA fine-tune, evaluation against the base agent, simulate), experiment (conditions x seeds,
summary, plot, the quick demo), cli (`reasonlab moloch simulate|train|eval|experiment`).
"""

from reasonlab.systems import lazy_exports

EXPORTS = {
    "anchors": ["ARENAS", "Anchor", "Arena"],
    "arenas": ["TAGS", "TASK_ACTIONS", "AnchorSplit", "agent_prompt", "extract_message", "load_anchors",
               "make_anchors", "parse_arena", "save_anchors", "split_anchors"],
    "audience": ["DEFAULT_WEIGHTS", "FEATURES", "LLMAudience", "MarketAudience", "Persona", "PositionBias",
                 "RoundResult", "Vote", "features", "generate_personas", "held_out_personas", "parse_vote",
                 "position_bias", "tally"],
    "datasets": ["Contest", "rft_examples", "tfb_examples"],
    "rounds": ["load_contests", "play_round", "sample_messages"],
    "probes": ["ARENA_PROBES", "PROBES", "ProbeResult", "WinRate", "fabrication", "judge_probe", "misrepresentation",
               "parse_probe", "populism", "probe_rate", "relative_change", "run_probes", "unsafe_encouragement",
               "win_rate"],
    "config": ["CONDITIONS", "PRESETS", "AgentConfig", "AudienceConfig", "DataConfig", "EvalConfig",
               "ExperimentConfig", "SimulateConfig", "TrainConfig"],
    "training": ["build_anchors", "build_audience", "evaluate_run", "simulate", "train"],
    "experiment": ["run_experiment", "selection", "summarize_experiment"],
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(name for names in EXPORTS.values() for name in names)
