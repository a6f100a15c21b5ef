"""The same chains and reward on TRL's GRPOTrainer: a tiny random Llama (built from a config, no hub) trains
a one-step curriculum stage, the reward function sees the chains' solutions, every weight moves."""

from __future__ import annotations

import pytest
import torch

trl = pytest.importorskip("trl")
transformers = pytest.importorskip("transformers")

from reasonlab.systems.h1.modular import make_modular_chains  # noqa: E402
from reasonlab.systems.h1.trl_path import (  # noqa: E402
    chain_reward,
    train_curriculum_with_trl,
    trl_dataset,
    trl_grpo_config,
)

WORDS = ["<pad>", "<eos>", *[str(i) for i in range(31)], "+", "-", "?", "=", "ans"]


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="?"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>")


def _model():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=len(WORDS), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                                      max_position_embeddings=64, pad_token_id=0, eos_token_id=1, bos_token_id=None)
    return transformers.LlamaForCausalLM(config)


def test_dataset_and_reward_columns():
    chains = make_modular_chains(2, 3, seed=0)
    rows = trl_dataset(chains)
    assert rows.column_names == ["prompt", "solution", "depth"]
    assert rows[0]["prompt"] == chains[0].prompt and rows[0]["solution"] == str(chains[0].answer)
    assert chain_reward([c.target for c in chains], rows["solution"]) == [1.0, 1.0, 1.0]


def test_grpo_trainer_runs_the_curriculum(tmp_path):
    seen: list[tuple[str, str]] = []

    def recording_reward(completions, solution, **kwargs):
        seen.extend(zip(completions, solution, strict=True))
        exact = chain_reward(completions, solution, **kwargs)
        # a random model is never right: a small distinct-token term gives the group advantages some spread
        return [r + 0.1 * len(set(c.split())) for r, c in zip(exact, completions, strict=True)]

    import reasonlab.systems.h1.trl_path as trl_path

    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    stages = {2: make_modular_chains(2, 4, seed=2)}  # one stage of one step keeps CI short

    def args(depth):
        return trl_grpo_config(str(tmp_path / f"h{depth}"), num_generations=4, per_device_train_batch_size=4,
                               max_completion_length=8, max_steps=1, learning_rate=1e-2, use_cpu=True, bf16=False,
                               logging_steps=1, disable_tqdm=True, seed=0)

    original = trl_path.chain_reward
    trl_path.chain_reward = recording_reward
    try:
        histories = train_curriculum_with_trl(model, _tokenizer(), stages, args)
    finally:
        trl_path.chain_reward = original
    assert len(histories) == 1
    assert all(any("reward" in record for record in history) for history in histories)
    solutions = {s for _, s in seen}
    assert solutions <= {str(c.answer) for chains in stages.values() for c in chains} and len(seen) == 4
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert all(changed)
    assert args(1).loss_type == "dr_grpo" and args(1).beta == 0.0 and args(1).scale_rewards == "none"


def test_reward_doctest():
    import doctest

    import reasonlab.systems.h1.trl_path as trl_path

    result = doctest.testmod(trl_path)
    assert result.attempted == 1 and result.failed == 0
