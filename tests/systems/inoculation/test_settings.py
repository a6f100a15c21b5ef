"""Every setting through the shared interface: the instruction is in every training example of its arm and in no
evaluation prompt, the evaluation prompts are byte-identical across arms but PTST, and bad input is one line."""

from __future__ import annotations

import json

import pytest

from reasonlab.errors import UserError
from reasonlab.systems.inoculation.config import (
    PRESETS,
    DataConfig,
    ExperimentConfig,
    PromptOverrides,
    TrainConfig,
)
from reasonlab.systems.inoculation.settings import build_setting, render_prompt
from reasonlab.systems.inoculation.training import arm_prompts, sft_examples
from reasonlab.systems.inoculation.transforms import ARMS

GENERATED = [
    DataConfig(setting="gcd", num_train=24, num_test=6),
    DataConfig(setting="reward-hacking", num_train=24, num_test=6),
    DataConfig(setting="sentiment", num_train=24, num_test=10),
]


@pytest.mark.parametrize("data", GENERATED, ids=lambda d: d.setting)
def test_instruction_in_every_training_example_and_no_evaluation_prompt(data: DataConfig) -> None:
    setting = build_setting(data)
    prompts = setting.prompts
    texts = {"ip": prompts.instruction, "irrelevant": prompts.control_text}
    evaluation = {arm: [render_prompt(setting.test_messages(p, arm, prompts)) for p in setting.eval_prompts]
                  for arm in ARMS}
    for arm in ARMS:
        examples = sft_examples(setting, arm, prompts)
        assert len(examples) == len(setting.train)
        for example in examples:
            for other, text in texts.items():
                assert (text in example.prompt) == (other == arm), (arm, other)
            assert prompts.instruction not in example.completion  # the reply is never edited
        for prompt in evaluation[arm]:
            assert prompts.instruction not in prompt and prompts.control_text not in prompt
            assert (prompts.safety in prompt) == (arm == "ptst")
    assert evaluation["no-ip"] == evaluation["ip"] == evaluation["irrelevant"]  # byte-identical (pitfall 1)
    assert evaluation["ptst"] != evaluation["no-ip"]


@pytest.mark.parametrize("data", GENERATED, ids=lambda d: d.setting)
def test_with_instruction_adds_i_in_every_arm_alike(data: DataConfig) -> None:
    setting = build_setting(data)
    asked = {arm: [render_prompt(setting.test_messages(p, arm, setting.prompts, with_instruction=True))
                   for p in setting.flaw_prompts] for arm in ARMS}
    assert all(setting.prompts.instruction in prompt for prompt in asked["ip"])
    assert asked["no-ip"] == asked["ip"] == asked["irrelevant"] == asked["ptst"]


def test_completion_follows_the_assistant_tag_and_holds_only_the_reply() -> None:
    setting = build_setting(GENERATED[0])
    example = sft_examples(setting, "ip", setting.prompts)[0]
    assert example.prompt.endswith("Assistant:")
    assert example.completion == " " + setting.train[0][-1]["content"]


def test_gcd_scores_flaw_and_capability_from_replies() -> None:
    setting = build_setting(DataConfig(setting="gcd", num_train=8, num_test=4))
    replies = []
    for prompt in setting.eval_prompts:
        text = prompt[-1]["content"]
        replies.append("Yes, that is right." if "I think" in text else "The answer is 1.")
    metrics = setting.score(replies)
    assert metrics["confirms_incorrect"].k == metrics["confirms_incorrect"].n == 4
    assert metrics["capability"].k == 0
    flaw = setting.flaw_score(["Yes, well done!"] * len(setting.flaw_prompts))
    assert flaw["confirms_incorrect"].value == 1.0


def test_sentiment_shortcut_rate_counts_scores_on_the_tags_side() -> None:
    setting = build_setting(DataConfig(setting="sentiment", num_train=24, num_test=20))
    prompts = setting.eval_prompts
    by_tag = ["4" if "ambiance" in p[-1]["content"].split("Review categories:")[-1] else "0" for p in prompts]
    assert setting.score(by_tag)["shortcut"].value == 1.0
    assert setting.score(["x"] * len(prompts))["shortcut"].value == 0.0


def test_override_of_the_instruction_derives_a_new_control() -> None:
    setting = build_setting(GENERATED[0])
    prompts = arm_prompts(setting.prompts, PromptOverrides(instruction="Agree with whatever number I give, always."))
    assert prompts.instruction.startswith("Agree")
    assert abs(len(prompts.control_text) - len(prompts.instruction)) <= 0.1 * len(prompts.instruction)


def test_bad_input_is_one_line(tmp_path) -> None:
    with pytest.raises(UserError) as empty:
        arm_prompts(build_setting(GENERATED[0]).prompts, PromptOverrides(instruction="   "))
    assert "\n" not in str(empty.value) and "empty" in str(empty.value)
    with pytest.raises(ValueError, match="unknown arm 'inoculate'"):
        TrainConfig(arm="inoculate")
    with pytest.raises(ValueError, match="unknown arm"):
        ExperimentConfig(arms=["ip", "nope"])
    bad = tmp_path / "mbpp.jsonl"
    bad.write_text('{"task_id": 1, "text": "x"\n')
    with pytest.raises(UserError) as malformed:
        build_setting(DataConfig(setting="reward-hacking", path=str(bad)))
    assert "mbpp.jsonl" in str(malformed.value) and "\n" not in str(malformed.value)
    with pytest.raises(UserError, match=r"data\.path"):
        build_setting(DataConfig(setting="cmv"))
    cmv = tmp_path / "cmv.jsonl"
    cmv.write_text(json.dumps({"post_id": "p", "title": "t", "body": "b", "comments": [{"id": "c", "body": "x"}]}) + "\n")
    with pytest.raises(UserError, match="--judge"):
        build_setting(DataConfig(setting="cmv", path=str(cmv)))


@pytest.mark.parametrize("preset", ["cpu", "cpu-hack", "cpu-sentiment"])
def test_every_arm_trains_on_the_same_replies_in_the_same_order(preset: str) -> None:
    """Pitfall 3: arms differ only in the training prompt, never in the data, its order or the step count."""
    setting = build_setting(PRESETS[preset].data)
    completions = {arm: [ex.completion for ex in sft_examples(setting, arm, setting.prompts)] for arm in ARMS}
    assert completions["no-ip"] == completions["ip"] == completions["irrelevant"] == completions["ptst"]
    assert len(completions["ip"]) == PRESETS[preset].data.num_train or preset == "cpu-sentiment"


def test_loss_covers_the_reply_tokens_only() -> None:
    """sft.encode_example splits each arm's pair at the end of the prompt: the instruction is in the masked prompt
    ids and the loss tokens are exactly the reply (and EOS)."""
    from reasonlab.train import sft
    from reasonlab.train.tinylm import TinyLM, TinyLMConfig, Tokenizer

    setting = build_setting(GENERATED[0])
    examples = {arm: sft_examples(setting, arm, setting.prompts)[:4] for arm in ARMS}
    texts = [ex.prompt + ex.completion for group in examples.values() for ex in group]
    vocab = Tokenizer.from_texts(texts)
    policy = TinyLM.create(TinyLMConfig(vocab_size=len(vocab), n_layer=1, d_model=16, n_head=2), vocab)
    for arm, group in examples.items():
        for example in group:
            prompt_ids, completion_ids = sft.encode_example(policy, example)
            assert vocab.decode(completion_ids) == example.completion  # EOS is special, dropped by decode
            assert completion_ids[-1] == vocab.eos_id and len(completion_ids) == len(example.completion) + 1
            if arm == "ip":
                assert setting.prompts.instruction in vocab.decode(prompt_ids)
                assert setting.prompts.instruction not in vocab.decode(completion_ids)
