"""AHN around tiny random transformers decoders (Llama with GQA, Qwen2, Qwen3, Gemma-3 text with sliding and global
layers), in float64: sinks + SWA equals the base under the same mask, the memory reads exactly the evicted tokens,
decode with a constant-size cache equals the parallel forward (also left-padded and through HFPolicy), checkpoints
are tied to their base, and only the memories learn."""

from __future__ import annotations

import copy

import pytest
import torch

transformers = pytest.importorskip("transformers")

from reasonlab.errors import UserError  # noqa: E402
from reasonlab.llm.base import SamplingParams  # noqa: E402
from reasonlab.llm.hf import HFPolicy  # noqa: E402
from reasonlab.systems.ahn.hf import (  # noqa: E402
    AHNCache,
    AHNLayerCache,
    ahn_generate,
    load_hf_ahn,
    save_hf_ahn,
    wrap_hf,
)
from reasonlab.systems.ahn.memory import AHNMemory  # noqa: E402
from reasonlab.systems.ahn.model import window_mask  # noqa: E402
from tiny_hf import word_tokenizer  # noqa: E402

VOCAB = 40
SINKS, WINDOW = 2, 5
FAMILIES = ["llama", "qwen2", "qwen3", "gemma3_text"]
GEMMA_TYPES = ["sliding_attention", "full_attention", "sliding_attention", "full_attention"]
GEMMA_SLIDING = 4


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models: one torch thread per test."""


def tiny(family: str, layers: int = 2, hidden: int = 32, seed: int = 0) -> torch.nn.Module:
    """A random float64 decoder with 4 query heads sharing 2 key/value heads (GQA)."""
    torch.manual_seed(seed)
    shared = {"vocab_size": VOCAB, "hidden_size": hidden, "intermediate_size": 64, "num_attention_heads": 4,
              "num_key_value_heads": 2, "max_position_embeddings": 64, "initializer_range": 0.1,
              "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": None}
    if family == "llama":
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(num_hidden_layers=layers, **shared))
    elif family == "qwen2":
        model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(num_hidden_layers=layers, **shared))
    elif family == "qwen3":
        model = transformers.Qwen3ForCausalLM(transformers.Qwen3Config(num_hidden_layers=layers, head_dim=8,
                                                                       **shared))
    else:
        # query_pre_attn_scalar 16 != head_dim 8: a wrong attention scale shows
        config = transformers.Gemma3TextConfig(num_hidden_layers=4, head_dim=8, sliding_window=GEMMA_SLIDING,
                                               layer_types=GEMMA_TYPES, query_pre_attn_scalar=16, **shared)
        model = transformers.Gemma3ForCausalLM(config)
        with torch.no_grad():  # Gemma's norms start at zero (scale 1 + w): give them some shape
            for name, parameter in model.named_parameters():
                if "norm" in name:
                    parameter.normal_(0.0, 0.3)
    return model.double().eval()


def randomise(wrapped, seed: int = 1) -> None:
    """Give the zero-initialised memory outputs (and gates) some weight, so the memory matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in wrapped.ahn_parameters():
            if parameter.dim() >= 2:
                parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))


def tokens(batch: int, length: int, seed: int = 2) -> torch.Tensor:
    return torch.randint(2, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def swa_reference_mask(model, length: int):
    """The sinks + SWA mask as transformers takes a custom one (Gemma-3: its sliding layers keep their window)."""
    mask = window_mask(length, SINKS, WINDOW)
    if model.config.model_type != "gemma3_text":
        return mask
    t, j = torch.arange(length)[:, None], torch.arange(length)[None, :]
    sliding = ((j <= t) & (t - j < GEMMA_SLIDING))[None, None]
    return {"full_attention": mask, "sliding_attention": sliding}


# ---- errors


def test_unsupported_family_window_beyond_context_and_sliding_layers_are_one_line_errors():
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=VOCAB,
                                                                  bos_token_id=None, eos_token_id=None))
    with pytest.raises(UserError, match=r"model type 'gpt2'.*llama, qwen2, qwen3, gemma3_text, gemma3"):
        wrap_hf(gpt2)
    with pytest.raises(UserError, match=r"= 65 exceeds .*max_position_embeddings = 64: give a smaller window"):
        wrap_hf(tiny("llama"), sinks=4, window=61)
    wrapped = wrap_hf(tiny("llama"), sinks=4, window=60)
    with pytest.raises(UserError, match=r"= 66 exceeds"):
        wrapped.set_budget(2, 64)
    with pytest.raises(UserError, match=r"layer 0 cannot take an AHN memory: .* here \[1, 3\]"):
        wrap_hf(tiny("gemma3_text"), sinks=SINKS, window=WINDOW, layers=[0])
    with pytest.raises(UserError, match="already wrapped"):
        wrap_hf(wrapped.model, sinks=SINKS, window=WINDOW)
    with pytest.raises(UserError, match="call its AHNHF wrapper"):
        wrapped.model(tokens(1, 4))


# ---- parallel forward


@pytest.mark.parametrize("family", FAMILIES)
def test_zero_initialised_memory_gives_sinks_and_swa_exactly_and_the_teacher_is_the_base(family):
    base = tiny(family)
    reference = copy.deepcopy(base)
    wrapped = wrap_hf(base, "gdn", SINKS, WINDOW)
    idx = tokens(2, 19)
    with torch.no_grad():
        student, baseline = wrapped.logits(idx), wrapped.logits(idx, use_memory=False)
        teacher = wrapped.teacher_logits(idx)
        masked_base = reference(idx, attention_mask=swa_reference_mask(reference, 19)).logits
        assert torch.equal(student, baseline)
        torch.testing.assert_close(baseline, masked_base, rtol=0, atol=1e-12)
        torch.testing.assert_close(teacher, reference(idx).logits, rtol=0, atol=1e-12)
        assert (baseline - teacher)[:, SINKS + WINDOW:].abs().max() > 1e-3  # the window hides something
        randomise(wrapped)
        assert (wrapped.logits(idx) - baseline)[:, SINKS + WINDOW:].abs().max() > 1e-3


@pytest.mark.parametrize("family", FAMILIES)
def test_a_budget_covering_the_sequence_equals_the_unwrapped_base(family):
    base = tiny(family)
    reference = copy.deepcopy(base)
    wrapped = wrap_hf(base, "gdn", sinks=3, window=15)
    randomise(wrapped)
    idx = tokens(2, 18)  # exactly the budget T = 18: no token has left the window yet
    with torch.no_grad():
        torch.testing.assert_close(wrapped.logits(idx), reference(idx).logits, rtol=0, atol=1e-12)


def test_the_memory_reads_the_evicted_tokens_with_post_rope_gqa_expanded_heads():
    """Layer 0's memory readout (the difference of the o_proj inputs with and without memory) equals AHNMemory's
    own forward on the base's post-RoPE q/k repeated to 4 heads, evicted stream e_i = token s + i read by T + i."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

    wrapped = wrap_hf(tiny("llama"), "gdn", SINKS, WINDOW)
    randomise(wrapped)
    layer = wrapped.model.model.layers[0]
    captured = []
    hook = layer.self_attn.o_proj.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
    idx, L, T = tokens(2, 17), 17, SINKS + WINDOW
    with torch.no_grad():
        wrapped.logits(idx)
        wrapped.logits(idx, use_memory=False)
        hook.remove()
        readout = captured[0] - captured[1]  # (B, L, H * dh)
        x = layer.input_layernorm(wrapped.model.model.embed_tokens(idx))
        attention = layer.self_attn
        shape = (2, L, -1, 8)
        q = attention.q_proj(x).view(shape).transpose(1, 2)
        k = attention.k_proj(x).view(shape).transpose(1, 2)
        v = repeat_kv(attention.v_proj(x).view(shape).transpose(1, 2), 2)
        cos, sin = wrapped.model.model.rotary_emb(x, torch.arange(L)[None])
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k = repeat_kv(k, 2)
        expected, _ = wrapped.memories["0"](q[:, :, T:], k[:, :, SINKS:L - WINDOW], v[:, :, SINKS:L - WINDOW],
                                            x[:, SINKS:L - WINDOW], x[:, T:])
    assert torch.equal(readout[:, :T], torch.zeros_like(readout[:, :T]))
    torch.testing.assert_close(readout[:, T:], expected, rtol=0, atol=1e-12)
    assert expected.abs().max() > 1e-3


def test_the_memory_sees_all_query_heads_under_gqa(monkeypatch):
    shapes = []
    recur = AHNMemory._recur

    def spy(self, q, k, v, *args, **kwargs):
        shapes.append((tuple(q.shape), tuple(k.shape), tuple(v.shape)))
        return recur(self, q, k, v, *args, **kwargs)

    monkeypatch.setattr(AHNMemory, "_recur", spy)
    wrapped = wrap_hf(tiny("llama"), "deltanet", SINKS, WINDOW)
    _, cache = wrapped.prefill(tokens(2, 13))
    N = 13 - SINKS - WINDOW
    assert shapes == [((2, 4, N, 8), (2, 4, N, 8), (2, 4, N, 8))] * 2  # 4 query heads, not the 2 key/value heads
    assert [tuple(layer.state.shape) for layer in cache.layers] == [(2, 4, 8, 8)] * 2


# ---- decode


@pytest.mark.parametrize(("family", "kind"), [("llama", "gdn"), ("llama", "deltanet"), ("llama", "mamba2"),
                                              ("qwen2", "gdn"), ("qwen3", "gdn"), ("gemma3_text", "gdn")])
@pytest.mark.parametrize("prefix", [3, 10])
def test_prefill_then_token_by_token_decode_equals_the_parallel_forward(family, kind, prefix):
    wrapped = wrap_hf(tiny(family), kind, SINKS, WINDOW)
    randomise(wrapped)
    idx = tokens(2, 21)
    with torch.no_grad():
        parallel = wrapped.logits(idx)
    logits, cache = wrapped.prefill(idx[:, :prefix])
    stepped = [logits]
    sizes = {}
    for position in range(prefix, idx.shape[1]):
        step_logits, cache = wrapped.step(idx[:, position], cache)
        stepped.append(step_logits[:, None])
        sizes[position + 1] = cache.nbytes()
    torch.testing.assert_close(torch.cat(stepped, dim=1), parallel, rtol=0, atol=1e-10)
    assert sizes[16] == sizes[21] > 0  # beyond the budget (and Gemma's sliding window) the cache stops growing


def test_the_cache_holds_sinks_window_and_state_and_gemma_sliding_layers_their_own_window():
    wrapped = wrap_hf(tiny("gemma3_text"), "gdn", SINKS, WINDOW)
    assert sorted(wrapped.memories) == ["1", "3"]  # only the full-attention layers get memories
    attentions = [layer.self_attn for layer in wrapped.model.model.layers]
    assert ["forward" in vars(attention) for attention in attentions] == [False, True, False, True]
    _, cache = wrapped.prefill(tokens(1, 30))
    assert isinstance(cache, AHNCache)
    assert [type(layer).__name__ for layer in cache.layers] == ["DynamicSlidingWindowLayer", "AHNLayerCache"] * 2
    ahn_layer = cache.layers[1]
    assert isinstance(ahn_layer, AHNLayerCache)
    assert tuple(ahn_layer.sink_keys.shape) == (1, 2, SINKS, 8)
    assert tuple(ahn_layer.window_keys.shape) == (1, 2, WINDOW, 8)
    assert tuple(ahn_layer.state.shape) == (1, 4, 8, 8)
    assert cache.layers[0].keys.shape[2] == GEMMA_SLIDING - 1
    # float64 K/V of 2 heads, 2 gates per query head and window token, the state; bools and the real-token count
    values = 8 * (2 * (SINKS + WINDOW) * 2 * 8 + 4 * WINDOW * 2 + 4 * 8 * 8)
    flags = (SINKS + WINDOW) + 8
    assert ahn_layer.nbytes() == values + flags


def test_the_text_part_of_a_multimodal_gemma3_is_wrapped_and_decodes_like_its_parallel_forward():
    text = tiny("gemma3_text").config.to_dict()
    vision = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "image_size": 28, "patch_size": 14}
    torch.manual_seed(0)
    config = transformers.Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4)
    wrapped = wrap_hf(transformers.Gemma3ForConditionalGeneration(config).double().eval(), "gdn", SINKS, WINDOW)
    assert wrapped.model_type == "gemma3" and sorted(wrapped.memories) == ["1", "3"]
    randomise(wrapped)
    idx = tokens(1, 14)
    with torch.no_grad():
        parallel = wrapped.logits(idx)
        assert (parallel - wrapped.logits(idx, use_memory=False))[:, SINKS + WINDOW:].abs().max() > 1e-3
    logits, cache = wrapped.prefill(idx[:, :6])
    stepped = [logits] + [wrapped.step(idx[:, i], cache)[0][:, None] for i in range(6, 14)]
    torch.testing.assert_close(torch.cat(stepped, dim=1), parallel, rtol=0, atol=1e-10)


def test_left_padded_rows_equal_each_row_alone_in_parallel_and_in_decoding():
    wrapped = wrap_hf(tiny("gemma3_text"), "gdn", SINKS, WINDOW)
    randomise(wrapped)
    long_row, short_row = tokens(1, 20, seed=3), tokens(1, 13, seed=4)
    batch = torch.cat([long_row, torch.cat([torch.zeros(1, 7, dtype=torch.long), short_row], dim=1)])
    mask = torch.ones_like(batch)
    mask[1, :7] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        padded = wrapped(batch, attention_mask=mask, position_ids=positions).logits
        torch.testing.assert_close(padded[:1], wrapped.logits(long_row), rtol=0, atol=1e-10)
        torch.testing.assert_close(padded[1:, 7:], wrapped.logits(short_row), rtol=0, atol=1e-10)
    # from a 7-column prefill (the short row's padding only: its sinks arrive while decoding), step by step
    logits, cache = wrapped.prefill(batch[:, :7], mask[:, :7])
    stepped = [logits]
    for column in range(7, 20):
        step_logits, cache = wrapped.step(batch[:, column], cache, mask[:, :column + 1])
        stepped.append(step_logits[:, None])
    stepped = torch.cat(stepped, dim=1)
    torch.testing.assert_close(stepped[:1], padded[:1], rtol=0, atol=1e-10)
    torch.testing.assert_close(stepped[1:, 7:], padded[1:, 7:], rtol=0, atol=1e-10)
    generated = ahn_generate(wrapped, batch, 9, attention_mask=mask)
    assert torch.equal(generated[:1], ahn_generate(wrapped, long_row, 9))
    assert torch.equal(generated[1:, 7:], ahn_generate(wrapped, short_row, 9))


def test_hf_policy_generates_and_scores_through_the_constant_cache():
    """HFPolicy's own decode loop (left padding, explicit positions) over the wrapper: a base-model cache would be
    refused by the wrapped layers, so this runs on the AHNCache, and gives ahn_generate's tokens."""
    words = ["<pad>", "<eos>", *[f"w{i}" for i in range(VOCAB - 2)]]
    wrapped = wrap_hf(tiny("llama"), "gdn", SINKS, WINDOW)
    randomise(wrapped)
    policy = HFPolicy(wrapped, word_tokenizer(words, unknown="w0"), name="tiny-ahn", device="cpu")
    prompts = [tokens(1, 15, seed=5)[0].tolist(), tokens(1, 9, seed=6)[0].tolist()]
    generations = policy.generate(prompts, SamplingParams(temperature=0.0, max_tokens=8))
    for prompt, (generation,) in zip(prompts, generations, strict=True):
        expected = ahn_generate(wrapped, torch.tensor([prompt]), 8)[0, len(prompt):].tolist()
        assert generation.token_ids == expected[:len(generation.token_ids)]
        assert len(generation.token_ids) >= 1
    completions = [generation.token_ids for (generation,) in generations]
    scored = policy.logprobs(prompts, completions)
    for prompt, completion, logprobs in zip(prompts, completions, scored, strict=True):
        row = torch.tensor([prompt + completion])
        with torch.no_grad():
            log_dist = wrapped.logits(row)[0].float().log_softmax(-1)
        expected = log_dist[len(prompt) - 1:-1].gather(-1, torch.tensor(completion)[:, None])[:, 0]
        torch.testing.assert_close(logprobs, expected, rtol=0, atol=1e-5)


def test_a_bfloat16_base_keeps_float32_memories_and_decodes_like_its_parallel_forward():
    base = tiny("llama").to(torch.bfloat16)
    wrapped = wrap_hf(base, "gdn", SINKS, WINDOW)
    assert {p.dtype for p in wrapped.ahn_parameters()} == {torch.float32}
    randomise(wrapped)
    idx = tokens(1, 12)
    with torch.no_grad():
        parallel = wrapped.logits(idx)
    logits, cache = wrapped.prefill(idx[:, :8])
    stepped = [logits] + [wrapped.step(idx[:, i], cache)[0][:, None] for i in range(8, 12)]
    assert parallel.dtype == torch.bfloat16
    torch.testing.assert_close(torch.cat(stepped, dim=1).float(), parallel.float(), rtol=0, atol=0.05)
    assert (parallel - wrapped.logits(idx, use_memory=False)).abs().max() > 0.05


# ---- checkpoints


def test_save_load_round_trip_and_foreign_checkpoints_are_one_line_errors(tmp_path):
    base = tiny("gemma3_text")
    fresh = copy.deepcopy(base)
    wrapped = wrap_hf(base, "gdn", SINKS, WINDOW)
    randomise(wrapped)
    path = save_hf_ahn(wrapped, tmp_path / "ahn.pt")
    idx = tokens(1, 16)
    loaded = load_hf_ahn(wrap_hf(fresh, "gdn", SINKS, WINDOW), path)
    with torch.no_grad():
        assert torch.equal(loaded.logits(idx), wrapped.logits(idx))
    with pytest.raises(UserError, match=r"holds gdn memories, the model has mamba2"):
        load_hf_ahn(wrap_hf(tiny("gemma3_text"), "mamba2", SINKS, WINDOW), path)
    with pytest.raises(UserError, match=r"trained for another base \(gemma3_text.*this is llama"):
        load_hf_ahn(wrap_hf(tiny("llama"), "gdn", SINKS, WINDOW), path)
    with pytest.raises(UserError, match=r"another base"):
        load_hf_ahn(wrap_hf(tiny("llama", hidden=48), "gdn", SINKS, WINDOW), save_hf_ahn(
            wrap_hf(tiny("llama"), "gdn", SINKS, WINDOW), tmp_path / "llama.pt"))
    with pytest.raises(UserError, match=r"layers \[1, 3\], the model wraps \[3\]"):
        load_hf_ahn(wrap_hf(tiny("gemma3_text"), "gdn", SINKS, WINDOW, layers=[3]), path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable AHN checkpoint"):
        load_hf_ahn(loaded, junk)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not an HF AHN checkpoint"):
        load_hf_ahn(loaded, tmp_path / "other.pt")
    with pytest.raises(UserError, match="no AHN checkpoint at"):
        load_hf_ahn(loaded, tmp_path / "missing.pt")
    with pytest.raises(UserError, match="saves only its memories: save_hf_ahn"):
        loaded.save_pretrained(tmp_path / "folder")


# ---- training


def test_gradients_reach_only_the_memories_and_survive_gradient_checkpointing():
    wrapped = wrap_hf(tiny("gemma3_text"), "gdn", SINKS, WINDOW)
    randomise(wrapped)
    idx = tokens(2, 19)
    teacher = wrapped.teacher_logits(idx)
    assert not teacher.requires_grad

    def gradients() -> list[torch.Tensor]:
        wrapped.zero_grad(set_to_none=True)
        student = wrapped.logits(idx)
        target = teacher.log_softmax(-1)
        loss = (target.exp() * (target - student.log_softmax(-1))).sum(-1)[:, SINKS + WINDOW:].mean()
        loss.backward()
        return [p.grad.clone() for p in wrapped.ahn_parameters()]

    wrapped.train()
    plain = gradients()
    assert all(not p.requires_grad and p.grad is None for p in wrapped.model.parameters())
    assert all(g.abs().max() > 0 for g in plain)  # every memory parameter learns
    wrapped.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    checkpointed = gradients()
    for a, b in zip(plain, checkpointed, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
