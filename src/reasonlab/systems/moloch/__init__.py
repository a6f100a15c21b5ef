"""Moloch's Bargain (arXiv 2510.06105): language models tuned to win an audience's votes drift into
misrepresentation and fabrication. A market round: the agent writes two messages about an anchor (a product card,
a candidate profile, a news item), an audience votes between them, the winners (RFT) and the voters' thoughts
(TFB) become fine-tuning data; probes measure what the tuned agent now says that the anchor does not.

    from reasonlab.systems.moloch import MarketAudience, agent_prompt, fabrication, split_anchors

    train, test = split_anchors("sales", num_train=64, num_test=32, seed=0)
    prompt = agent_prompt(train[0])                       # the agent's instructions, the card, the tag rule
    votes = MarketAudience(seed=0).vote(train[0], ("pitch one", "pitch two"), random.Random(0))
    print(fabrication(train[0], "Now with 30,000 mAh!").flagged)

What exists so far (issue 20, first pieces): anchors and arenas (offline generators, prompts, message
extraction, anchor files), audiences (LLM personas with per-voter A/B shuffling and a position-bias check; the
rule-based market of spec 6B and its control), probes (fabrication, misrepresentation, populism, unsafe
encouragement, an LLM-judge path, probe rates, win rates with bootstrap intervals), the RFT/TFB training sets,
and one market round (two samples per anchor, votes, a crash-safe contest log that resumes). Next: config and
presets, training over rounds (round -> RFT/TFB LoRA SFT -> next round), evaluation against the base model, CLI
(simulate|train|eval), the experiment and the demo.
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
    "rounds": ["load_contests", "play_round"],
    "probes": ["ARENA_PROBES", "PROBES", "ProbeResult", "WinRate", "fabrication", "judge_probe", "misrepresentation",
               "parse_probe", "populism", "probe_rate", "relative_change", "run_probes", "unsafe_encouragement",
               "win_rate"],
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(name for names in EXPORTS.values() for name in names)
