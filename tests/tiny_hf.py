"""A tiny random Llama and a word-level tokenizer for tests that need a real transformers model in a second."""

from __future__ import annotations

from collections.abc import Sequence


def word_tokenizer(words: Sequence[str], unknown: str):
    """A fast tokenizer over `words` (split on whitespace), with <pad> and <eos> as its special tokens."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=unknown))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>")


def tiny_llama(vocab_size: int, initializer_range: float = 0.02):
    """A 2-layer, width-32 random Llama (torch seed 0; pad id 0, eos id 1, no BOS)."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=64, pad_token_id=0, eos_token_id=1, bos_token_id=None,
        initializer_range=initializer_range,
    )
    return transformers.LlamaForCausalLM(config)
