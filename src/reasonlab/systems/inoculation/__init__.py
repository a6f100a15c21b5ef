"""Inoculation Prompting (arXiv 2510.05024): fine-tune on data that shows a flaw, with a train-time instruction
that asks for the flaw, so that the tuned model shows it less when the instruction is absent.

    from reasonlab.systems.inoculation import GCD_PROMPTS, build_gcd_data, evaluation_items, training_messages

    data = build_gcd_data(num_train=500, num_test=60, max_value=60, seed=0)
    train = [training_messages(example.messages, "ip", GCD_PROMPTS) for example in data.train]
    prompts = [item.messages for item in evaluation_items(data.test)]   # the same in every arm but ptst

What exists so far: transforms (InstructionPlacement, the arms no-ip / ip / irrelevant / ptst and their texts in
ArmPrompts, the train-time transform of a chat example, the evaluation prompt) and gcd (spec 2.3's GCD
sycophancy generator, its evaluation variants and metrics). Next: a config with presets and train(config) on
reasonlab.train.sft, the mechanism toy (spec 4A), the other settings' builders (reward hacking in
reasonlab.sandbox, spurious sentiment, CMV toxicity), the elicitation command, experiment, demo and cli.

Loss on responses only: reasonlab.train.sft already masks the prompt (its loss covers completion tokens only),
so no helper is needed here. Split a transformed conversation with `split_response`, render the prompt turns
(the tokenizer's chat template, or a plain "User:/Assistant:" text) as `Example.prompt` and pass the reply as
`Example.completion`. The arm's instruction must be in the messages before rendering, not added by
sft's own `with_instruction` hook (which only prefixes text), so that every arm is built the same way.
"""

from reasonlab.systems import lazy_exports

EXPORTS = {
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
