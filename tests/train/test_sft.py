"""SFT: completion-only loss, the prompt-transform hook, the plain loop on a tinylm, and LoRA on Gemma-3-270M."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import torch

from reasonlab.errors import UserError
from reasonlab.llm.base import SamplingParams
from reasonlab.runs import Run
from reasonlab.train.sft import (
    Example,
    LoRAConfig,
    SFTConfig,
    completion_loss,
    encode_example,
    train,
    with_instruction,
)
from reasonlab.train.tinylm import TinyLM, TinyLMConfig, Tokenizer


@pytest.fixture(autouse=True)
def single_thread(request):
    """Tiny models get one torch thread (see `one_torch_thread`); the slow Gemma tests keep them all."""
    if request.node.get_closest_marker("slow") is None:
        request.getfixturevalue("one_torch_thread")


def tiny_policy() -> TinyLM:
    tokenizer = Tokenizer.from_texts(["0123456789+=;!"])
    return TinyLM.create(
        TinyLMConfig(vocab_size=len(tokenizer), n_layer=2, d_model=64, n_head=4), tokenizer, seed=0
    )


SUMS = [Example(f"{a}+{b}=", str(a + b)) for a in range(6) for b in range(6)]


def test_encode_example_splits_prompt_and_completion():
    policy = tiny_policy()
    prompt, completion = encode_example(policy, Example("12+3=", "15"))
    assert policy.detokenize(prompt) == "12+3=" and policy.detokenize(completion) == "15"
    assert completion[-1] == policy.eos_token_id
    assert encode_example(policy, Example([5, 6], [7]), add_eos=False) == ([5, 6], [7])
    with pytest.raises(UserError, match="empty"):
        encode_example(policy, Example("", "1"))


def test_loss_counts_completion_tokens_only():
    policy = tiny_policy()
    example = Example("1+2=", "3")
    prompt, completion = encode_example(policy, example)
    with torch.no_grad():
        expected = -policy.logprobs([prompt], [completion])[0].mean().item()
    assert completion_loss(policy, [example]) == pytest.approx(expected, abs=1e-6)
    # changing the prompt's tokens changes the context but never adds prompt tokens to the loss
    assert len(completion) == 2


def test_plain_loop_lowers_held_out_loss_and_logs(tmp_path):
    policy = tiny_policy()
    train_set, held_out = SUMS[::2] + SUMS[1::4], SUMS[3::4]
    run = Run.create(tmp_path, "sft", SFTConfig())
    result = train(
        SFTConfig(max_steps=60, batch_size=16, learning_rate=3e-3, progress=False),
        policy,
        train_set,
        held_out,
        run=run,
    )
    assert result.steps == 60 and len(result.train_losses) == 60
    assert result.train_losses[-1] < 0.5 * result.train_losses[0]
    assert result.eval_loss_after < result.eval_loss_before
    assert all(torch.isfinite(torch.tensor(result.train_losses)))
    records = [r for r in run.metrics() if r.get("kind") == "sft"]
    assert len(records) == 61 and records[-1]["eval_loss_after"] == pytest.approx(result.eval_loss_after)


def test_prompt_transform_is_applied_before_training():
    """The Inoculation Prompting hook: the model is trained on the transformed prompts."""
    seen = []

    def transform(example: Example) -> Example:
        seen.append(example)
        return with_instruction("!!", separator=";")(example)

    policy = tiny_policy()
    train(
        SFTConfig(max_steps=40, batch_size=16, learning_rate=3e-3, progress=False),
        policy,
        SUMS,
        transform=transform,
    )
    assert len(seen) == len(SUMS)
    with_tag = completion_loss(policy, [with_instruction("!!", ";")(ex) for ex in SUMS])
    without = completion_loss(policy, SUMS)
    assert with_tag < without  # it learned the sums in the context it was trained in
    with pytest.raises(UserError, match="text prompts"):
        with_instruction("x")(Example([1, 2], "3"))


def test_should_stop_ends_training_at_the_step_it_names_and_keeps_train_mode():
    policy = tiny_policy()
    seen, modes = [], []

    def should_stop(step: int) -> bool:
        seen.append(step)
        policy.module.eval()  # as an evaluation inside the callback would
        return step == 11

    def record_mode(module, args):
        modes.append(module.training)

    handle = policy.module.register_forward_pre_hook(record_mode)
    result = train(SFTConfig(max_steps=60, batch_size=16, learning_rate=3e-3, progress=False), policy, SUMS,
                   should_stop=should_stop)
    handle.remove()
    assert seen == list(range(12)) and result.steps == 12 and len(result.train_losses) == 12
    assert len(modes) == 12 and all(modes)  # every training step ran in train mode
    assert not policy.module.training


def test_user_errors():
    policy = tiny_policy()
    with pytest.raises(UserError, match="no SFT examples"):
        train(SFTConfig(progress=False), policy, [])
    with pytest.raises(UserError, match="LoRA"):
        train(SFTConfig(lora=LoRAConfig(), progress=False), policy, SUMS)


WITHOUT_HF = """
import sys

for name in ("transformers", "trl", "peft"):
    sys.modules[name] = None  # any import of them now raises ImportError

from reasonlab.runs import Run
from reasonlab.train.sft import Example, SFTConfig, train
from reasonlab.train.tinylm import TinyLM, TinyLMConfig, Tokenizer

tokenizer = Tokenizer.from_texts(["0123456789+="])
policy = TinyLM.create(TinyLMConfig(vocab_size=len(tokenizer), n_layer=1, d_model=32, n_head=2), tokenizer, seed=0)
examples = [Example(f"{a}+{b}=", str(a + b)) for a in range(4) for b in range(4)]
config = SFTConfig(max_steps=3, batch_size=8, learning_rate=3e-3, progress=False)
result = train(config, policy, examples, examples[:4], run=Run.create(sys.argv[1], "sft", config))
assert result.steps == 3 and result.eval_loss_after is not None, result
print("trained", result.steps)
"""


def test_tinylm_sft_needs_no_transformers_trl_or_peft(tmp_path):
    """The plain path never imports the HF stack: a tinylm SFT runs where transformers is not installed."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_HF, str(tmp_path)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "trained 3"


# short rows (about 8 tokens): a CPU forward of Gemma-3-270M costs ~0.03 s per token on 2 busy cores
GEMMA_TRAIN = [Example(f"{i} plus one is", f" {i + 1}.") for i in range(0, 100, 2)]
GEMMA_HELD_OUT = [Example(f"{i} plus one is", f" {i + 1}.") for i in range(101, 160, 10)]


@pytest.mark.slow
def test_gemma_lora_sft_lowers_held_out_loss(embedded_hf, tmp_path):
    """TRL SFTTrainer + peft LoRA on Gemma-3-270M (hf:embedded): a 50-example set, 3 steps of 8 (CPU budget)."""
    from reasonlab.llm.hf import HFPolicy

    # a private copy: the session's Gemma is shared with other tests and must not grow an adapter
    policy = HFPolicy(copy.deepcopy(embedded_hf.module), embedded_hf.tokenizer, name="hf:embedded-copy")
    before = {n: p.detach().clone() for n, p in policy.module.named_parameters()}
    config = SFTConfig(
        max_steps=3,
        batch_size=8,
        learning_rate=2e-3,
        progress=False,
        lora=LoRAConfig(r=8, alpha=16, dropout=0.0, target_modules=["q_proj", "v_proj"]),
    )
    result = train(config, policy, GEMMA_TRAIN, GEMMA_HELD_OUT, run=Run.create(tmp_path, "gemma-sft", config))
    assert result.steps == 3 and len(result.train_losses) == 3
    assert result.eval_loss_after < result.eval_loss_before - 0.05, result
    after = dict(policy.module.named_parameters())
    assert any("lora_" in n for n in after)
    # only the adapter learned: every base weight is unchanged
    for name, value in after.items():
        if "lora_" not in name:
            base_name = name.replace(".base_layer", "").removeprefix("base_model.model.")
            assert torch.equal(value.detach(), before[base_name]), name
    # and the policy now generates with the adapter in place, while its reference switches the adapter off
    assert policy.complete(GEMMA_HELD_OUT[0].prompt, SamplingParams(temperature=0.0, max_tokens=4)).token_ids
    prompt_ids = [policy.tokenize(GEMMA_HELD_OUT[0].prompt)]
    completion_ids = [policy.tokenize(GEMMA_HELD_OUT[0].completion, add_special_tokens=False)]
    with torch.no_grad():
        adapted = policy.logprobs(prompt_ids, completion_ids)[0].sum()
        reference = policy.reference().logprobs(prompt_ids, completion_ids)[0].sum()
    assert adapted > reference + 0.05


def test_a_crashed_plain_run_resumes_to_the_uninterrupted_result(tmp_path):
    """checkpoint_every saves weights, optimizer, schedule and data order; resume continues to the same weights
    and losses as a run that never stopped, and logs each step once."""
    config = SFTConfig(max_steps=9, batch_size=8, learning_rate=3e-3, warmup_ratio=0.3, checkpoint_every=3,
                       progress=False)
    whole = tiny_policy()
    whole_result = train(config, whole, SUMS, run=Run.create(tmp_path, "whole", config))

    class Crash(Exception):
        pass

    def crash(step: int) -> bool:
        if step == 4:  # after step 5's update; the last checkpoint holds 3 steps
            raise Crash
        return False

    crashed = tiny_policy()
    run = Run.create(tmp_path, "crashed", config)
    with pytest.raises(Crash):
        train(config, crashed, SUMS, run=run, should_stop=crash)
    resumed = tiny_policy()  # a new process: fresh weights, everything comes from the checkpoint
    result = train(config.model_copy(update={"resume": True}), resumed, SUMS, run=Run.open(tmp_path / "crashed"))
    assert result.train_losses == pytest.approx(whole_result.train_losses)
    for (name, a), b in zip(whole.module.state_dict().items(), resumed.module.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    steps = [r["step"] for r in run.metrics() if r.get("kind") == "sft" and "loss" in r]
    assert steps == list(range(9))


def test_sft_checkpoint_errors(tmp_path):
    with pytest.raises(UserError, match="need a run"):
        train(SFTConfig(max_steps=1, checkpoint_every=1, progress=False), tiny_policy(), SUMS)
    config = SFTConfig(max_steps=1, resume=True, progress=False)
    with pytest.raises(UserError, match="no SFT checkpoint"):
        train(config, tiny_policy(), SUMS, run=Run.create(tmp_path, "empty", config))
