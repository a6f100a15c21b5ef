"""Inoculation Prompting (arXiv 2510.05024): fine-tune on data that shows a flaw, with a train-time instruction
that asks for the flaw, so that the tuned model shows it less when the instruction is absent.

    from reasonlab.systems.inoculation import PRESETS, train
    from reasonlab.runs import Run

    config = PRESETS["cpu"].model_copy(update={"arm": "ip", "seed": 0})   # GCD sycophancy, hf:embedded, LoRA
    run_dir = train(config)
    print(Run.open(run_dir).summary()["test"]["confirms_incorrect"])

Modules: transforms (the arms no-ip / ip / irrelevant / ptst, the train-time transform, byte-identical
evaluation prompts), the four settings (gcd: spec 2.3's sycophancy generator; reward_hacking: generated coding
tasks scored on hidden tests in reasonlab.sandbox; sentiment: reviews with a spurious ambiance tag; toxicity:
CMV data scored by a judge LLM), settings (one interface over them), config (presets), training (train one
arm, evaluate, elicit), experiment (arms x seeds with elicitation), toy (the spec 4A mechanism on a tinylm).

Loss on responses only: reasonlab.train.sft masks the prompt. The arm's instruction is placed in the messages
before rendering (`SettingData.train_messages`), so every arm is built the same way.
"""

from reasonlab.systems import lazy_exports

EXPORTS = {
    "config": ["PRESETS", "DataConfig", "ElicitConfig", "EvalConfig", "ExperimentConfig", "GenerationConfig",
               "PromptOverrides", "TrainConfig"],
    "experiment": ["run_experiment", "run_toy", "summarize_experiment"],
    "reward_hacking": ["REWARD_HACK_PROMPTS", "CodingTask", "Outcome", "build_coding_tasks", "correct_solution",
                       "extract_code", "hacked_solution", "load_mbpp_jsonl", "reward_hack_metrics",
                       "score_solutions"],
    "sentiment": ["SENTIMENT_PROMPTS", "Review", "RobustAccuracy", "generate_reviews", "load_cebab", "parse_label",
                  "robust_accuracy", "spurious_split"],
    "settings": ["SettingData", "build_setting", "render_prompt"],
    "toxicity": ["CMV_PROMPTS", "CMVComment", "CMVPost", "load_cmv", "select_training_comments", "toxicity_metrics"],
    "toy": ["ToyConfig", "run_seed", "summarize"],
    "training": ["elicit", "evaluate", "train"],
    "gcd": [
        "GCD_PROMPTS",
        "GCDData",
        "GCDEvalItem",
        "GCDExample",
        "Rate",
        "build_gcd_data",
        "confirmation",
        "euclid_lines",
        "euclid_steps",
        "evaluation_items",
        "gcd_metrics",
        "parse_gcd",
        "step_pairs",
        "training_conversation",
        "wrong_value",
    ],
    "transforms": [
        "ARMS",
        "Arm",
        "ArmPrompts",
        "Message",
        "InstructionPlacement",
        "apply_transform",
        "control_length_ok",
        "derive_control",
        "evaluation_messages",
        "parse_arm",
        "split_response",
        "training_messages",
    ],
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(name for names in EXPORTS.values() for name in names)
