"""GRPO through TRL (`reasonlab.train.trl_grpo`): a tiny random Llama (built from a config, no hub) trains one
GRPOTrainer step on rows with an extra column, as an hf-backend policy and as a bare transformers model; the
reward sees every completion with its row's column; every weight moves; Dr.GRPO's settings are the defaults."""

from __future__ import annotations

import pytest
import torch

trl = pytest.importorskip("trl")
transformers = pytest.importorskip("transformers")

from reasonlab.errors import UserError  # noqa: E402
from reasonlab.train.trl_grpo import grpo_config, train_grpo  # noqa: E402

WORDS = ["<pad>", "<eos>", "?", *[str(i) for i in range(10)], "+", "="]


def tiny_llama_and_tokenizer():
    """A 2-layer, width-32 random Llama over WORDS and its word-level tokenizer (seed 0)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="?"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=len(WORDS), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                                      max_position_embeddings=64, pad_token_id=0, eos_token_id=1, bos_token_id=None)
    return transformers.LlamaForCausalLM(config), tokenizer


ROWS = [{"prompt": f"{a} + {b} =", "solution": str((a + b) % 10)} for a, b in [(1, 2), (3, 4), (5, 1), (2, 2)]]


def args(tmp_path, **overrides):
    return grpo_config(str(tmp_path), num_generations=4, per_device_train_batch_size=4, max_completion_length=6,
                       max_steps=1, learning_rate=1e-2, use_cpu=True, bf16=False, logging_steps=1,
                       disable_tqdm=True, seed=0, **overrides)


def distinct_words(completions, solution, **kwargs):
    """A random model is never right: reward distinct words, so that each group's rewards differ."""
    seen.extend(zip(completions, solution, strict=True))
    return [float(len(set(c.split()))) for c in completions]


seen: list[tuple[str, str]] = []


def test_dr_grpo_settings_are_the_defaults_and_overrides_win(tmp_path):
    config = grpo_config(str(tmp_path), learning_rate=3e-6, use_cpu=True, bf16=False)
    assert (config.loss_type, config.scale_rewards, config.beta, config.num_generations) == ("dr_grpo", "none", 0.0, 8)
    assert (config.temperature, config.learning_rate, config.output_dir) == (1.0, 3e-6, str(tmp_path))


def test_grpo_trainer_moves_every_weight_of_a_bare_model(tmp_path):
    model, tokenizer = tiny_llama_and_tokenizer()
    before = [p.detach().clone() for p in model.parameters()]
    seen.clear()
    history = train_grpo(model, ROWS, distinct_words, args(tmp_path), tokenizer=tokenizer)
    assert any("reward" in record for record in history)
    assert len(seen) == 4 and {s for _, s in seen} <= {row["solution"] for row in ROWS}
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_an_hf_policy_is_trained_in_place(tmp_path):
    from reasonlab.llm.hf import HFPolicy

    model, tokenizer = tiny_llama_and_tokenizer()
    policy = HFPolicy(model, tokenizer, device="cpu")
    before = [p.detach().clone() for p in policy.module.parameters()]
    train_grpo(policy, ROWS, [distinct_words], args(tmp_path))
    assert all(not torch.equal(a, b) for a, b in zip(before, policy.module.parameters(), strict=True))


def test_bad_inputs_are_one_line_errors(tmp_path):
    model, tokenizer = tiny_llama_and_tokenizer()
    with pytest.raises(UserError, match="needs its tokenizer"):
        train_grpo(model, ROWS, distinct_words, args(tmp_path))
    with pytest.raises(UserError, match="every row needs a 'prompt'"):
        train_grpo(model, [{"question": "1 + 1 ="}], distinct_words, args(tmp_path), tokenizer=tokenizer)
