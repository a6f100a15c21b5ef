"""mem-agent test fixtures: a randomly initialised Gemma-3-config model with the real Gemma tokenizer, saved as
an HF folder that the system loads like any other model (`load_llm("hf:PATH")`)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_gemma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 layers of width 16 (about 4.2M parameters, nearly all in the 262k-word embedding), seed 0."""
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    from reasonlab.llm.embedded import embedded_gemma_dir

    tokenizer = AutoTokenizer.from_pretrained(embedded_gemma_dir())
    hidden, layers = 16, 2
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=2, num_key_value_heads=1, head_dim=hidden // 2, max_position_embeddings=4096,
        sliding_window=256, layer_types=["sliding_attention"] * (layers - 1) + ["full_attention"],
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-gemma3")
    Gemma3ForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
