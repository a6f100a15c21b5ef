"""AHN around a Hugging Face decoder (Llama, Qwen2, Qwen3, Gemma-3): the same student as `model.AHNStudent`, for
transformers models. Each wrapped layer attends to s sinks plus a sliding window of W tokens and adds the readout
of a trainable AHN memory over the tokens that left its window before o_proj; the base weights stay frozen.

Which layers: every full-attention layer (all of Llama / Qwen2 / Qwen3; Gemma-3's global layers only, its sliding
layers keep their own built-in window and cache). A wrapped attention module computes its own q / k / v with the
base's projections (Gemma-3 and Qwen3: q_norm / k_norm), RoPE from the position embeddings the model passes, GQA
keys and values repeated to all query heads, and the base's scaling (Gemma-3: query_pre_attn_scalar); none of
these families soft-caps attention logits in transformers 5 (Gemma-3's final-logit cap stays the base's).

Index alignment as in model.py, counted in columns of the batch with a padding mask: query t sees key j <= t when
j is real and (t - j < W or j is one of its row's first s real tokens); the memory write stream is column
e = s + i, read by query T + i (inclusive), and a column only writes when it is a real non-sink token (else its
gates are zero, which leaves the state as it is). Without padding this is exactly model.py's stream.

    wrapped = wrap_hf(model, kind="gdn", sinks=4, window=1020)
    logits = wrapped.logits(input_ids)                       # parallel (training, evaluation)
    target = wrapped.teacher_logits(input_ids)               # the frozen base, full causal attention
    tokens = ahn_generate(wrapped, input_ids, 32)            # greedy, constant-size cache
    HFPolicy(wrapped, tokenizer)                             # generates through the same constant cache
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers.cache_utils import Cache, CacheLayerMixin, DynamicCache, get_layer_types_and_kwargs

from reasonlab.errors import UserError
from reasonlab.runs import atomic_write
from reasonlab.systems.ahn.memory import AHNMemory
from reasonlab.systems.ahn.model import check_budget

__all__ = [
    "AHNHF",
    "SUPPORTED_MODEL_TYPES",
    "AHNCache",
    "AHNLayerCache",
    "ahn_generate",
    "load_hf_ahn",
    "save_hf_ahn",
    "wrap_hf",
]

SUPPORTED_MODEL_TYPES: tuple[str, ...] = ("llama", "qwen2", "qwen3", "gemma3_text", "gemma3")
# families whose attention RMS-normalises q and k per head before RoPE
_QK_NORM_TYPES = ("qwen3", "gemma3_text", "gemma3")
# the config fields that fix the shapes and attention pattern a memory was trained for
_ARCHITECTURE_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                        "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings",
                        "sliding_window", "query_pre_attn_scalar", "rope_parameters")
_FORMAT = "reasonlab-ahn-hf"

Mode = Literal["ahn", "swa", "full"]


@dataclass(frozen=True, eq=False)
class _Settings:
    """What one call asks of the wrapped attention modules; travels down as a forward kwarg, so a gradient
    checkpoint's recomputation sees the same settings as the forward it repeats."""

    mode: Mode
    sinks: int
    window: int
    padding: torch.Tensor | None  # (B, columns) bool, True for real tokens; None: all real


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, H, L, dh) rotated by the model's cos / sin tables (B, L, dh)."""
    return x * cos[:, None] + _rotate_half(x) * sin[:, None]


def _repeat_heads(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, Hkv, L, dh) -> (B, Hkv * groups, L, dh): each key/value head serves `groups` query heads (GQA)."""
    return x if groups == 1 else x.repeat_interleave(groups, dim=1)


def _window_mask(real: torch.Tensor, sink: torch.Tensor, window: int) -> torch.Tensor:
    """(B, 1, L, L) bool: query t sees real key j <= t when t - j < window or j is a sink; a padding query also
    sees itself, so no softmax row is empty."""
    L = real.shape[1]
    t = torch.arange(L, device=real.device)[:, None]
    j = torch.arange(L, device=real.device)[None, :]
    causal = j <= t
    visible = real[:, None, :] & causal & ((t - j < window) | sink[:, None, :])  # (B, L, L)
    return (visible | torch.eye(L, dtype=torch.bool, device=real.device))[:, None]


class AHNLayerCache(CacheLayerMixin):
    """One wrapped layer's decode state, constant in length: per row its s sink keys/values, a ring of the last W
    columns (keys, values, the write gates computed when each token arrived, whether it may enter the memory), the
    real-token count and the memory state (B, H, dh, dh). Keys and values keep the base's key/value heads."""

    is_sliding = False

    def __init__(self, sinks: int, window: int) -> None:
        super().__init__()
        self.sinks, self.window = sinks, window
        self.columns = 0  # columns seen, padding included
        self.state: torch.Tensor | None = None

    def allocate(self, keys: torch.Tensor, gates: torch.Tensor) -> None:
        """Empty slots shaped after the first call's keys (B, Hkv, L, dh) and gates (B, H, L, n_gates)."""
        B, Hkv, _, dh = keys.shape
        kv = {"dtype": keys.dtype, "device": keys.device}
        self.sink_keys = torch.zeros(B, Hkv, self.sinks, dh, **kv)
        self.sink_values = torch.zeros(B, Hkv, self.sinks, dh, **kv)
        self.sink_valid = torch.zeros(B, self.sinks, dtype=torch.bool, device=keys.device)
        self.window_keys = torch.zeros(B, Hkv, self.window, dh, **kv)
        self.window_values = torch.zeros(B, Hkv, self.window, dh, **kv)
        self.window_gates = torch.zeros(B, gates.shape[1], self.window, gates.shape[-1], dtype=gates.dtype,
                                        device=keys.device)
        self.window_valid = torch.zeros(B, self.window, dtype=torch.bool, device=keys.device)  # may enter memory
        self.real_count = torch.zeros(B, dtype=torch.long, device=keys.device)
        self.is_initialized = True

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        """Unused: `allocate` sizes the slots when the prefill arrives."""

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        raise UserError("an AHN layer cache is filled by its AHNHF wrapper: call wrapped(...), not the base model")

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        """What transformers sizes its (unused here) full-attention mask by: every column so far."""
        return self.columns + query_length, 0

    def get_seq_length(self) -> int:
        return self.columns

    def get_max_length(self) -> int:
        return -1  # no limit on the length: the slots are reused

    def nbytes(self) -> int:
        if not self.is_initialized:
            return 0
        tensors = [self.sink_keys, self.sink_values, self.sink_valid, self.window_keys, self.window_values,
                   self.window_gates, self.window_valid, self.real_count, self.state]
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)


class AHNCache(Cache):
    """The decode cache of an `AHNHF`: an `AHNLayerCache` per wrapped layer, transformers' own layer caches for the
    others (Gemma-3's sliding layers keep their last sliding_window - 1 tokens). Its size does not grow."""

    def __init__(self, config: Any, wrapped_layers: list[int], sinks: int, window: int) -> None:
        layers = DynamicCache(config=config).layers
        for index in wrapped_layers:
            layers[index] = AHNLayerCache(sinks, window)
        super().__init__(layers=layers)
        self.sinks, self.window = sinks, window

    def nbytes(self) -> int:
        """Bytes held, independent of how many tokens were decoded."""
        total = 0
        for layer in self.layers:
            if isinstance(layer, AHNLayerCache):
                total += layer.nbytes()
            elif getattr(layer, "is_initialized", False) and layer.keys is not None:
                total += layer.keys.numel() * layer.keys.element_size()
                total += layer.values.numel() * layer.values.element_size()
        return total


class _AHNAttention:
    """The forward of one wrapped attention module (set as the module's `forward`): sinks + SWA softmax attention
    plus the memory readout, before o_proj. Mode "full" runs the module's own forward (the teacher)."""

    def __init__(self, attention: nn.Module, memory: AHNMemory, qk_norm: bool) -> None:
        self.attention, self.memory, self.qk_norm = attention, memory, qk_norm

    def __call__(self, hidden_states: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor],
                 attention_mask: Any = None, cache: Cache | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
        settings = kwargs.pop("ahn_settings", None)
        if settings is None:
            raise UserError("this model's attention is wrapped by AHN: call its AHNHF wrapper, not the base model")
        if settings.mode == "full":
            return type(self.attention).forward(self.attention, hidden_states, position_embeddings=position_embeddings,
                                                attention_mask=attention_mask, cache=cache, **kwargs)
        layer = None
        if cache is not None:
            layer = cache.layers[self.attention.layer_idx]
            if not isinstance(layer, AHNLayerCache):
                raise UserError(f"an AHN-wrapped model decodes with an AHNCache, not a {type(cache).__name__}: "
                                "let the wrapper make it (use_cache=True, no cache)")
        q, k, v = self._project(hidden_states, position_embeddings)
        L = hidden_states.shape[1]
        real = (torch.ones(hidden_states.shape[:2], dtype=torch.bool, device=hidden_states.device)
                if settings.padding is None else settings.padding[:, -L:])
        if layer is None or layer.columns == 0:
            a = self._parallel(q, k, v, hidden_states, real, settings, layer)
        else:
            a = torch.cat([self._step(q[:, :, i:i + 1], k[:, :, i:i + 1], v[:, :, i:i + 1], hidden_states[:, i],
                                      real[:, i], settings, layer) for i in range(L)], dim=1)
        return self.attention.o_proj(a), None

    def _project(self, x: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The base's post-RoPE q (B, H, L, dh) and k, v (B, Hkv, L, dh) of the normed hidden states x."""
        attention = self.attention
        shape = (*x.shape[:-1], -1, attention.head_dim)
        q, k = attention.q_proj(x).view(shape), attention.k_proj(x).view(shape)
        v = attention.v_proj(x).view(shape).transpose(1, 2)
        if self.qk_norm:
            q, k = attention.q_norm(q), attention.k_norm(k)
        cos, sin = position_embeddings
        return _rope(q.transpose(1, 2), cos, sin), _rope(k.transpose(1, 2), cos, sin), v

    def _parallel(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, x: torch.Tensor, real: torch.Tensor,
                  settings: _Settings, layer: AHNLayerCache | None) -> torch.Tensor:
        """All L columns at once (training, evaluation, prefill): (B, L, H * dh) before o_proj."""
        B, H, L, dh = q.shape
        s, W = settings.sinks, settings.window
        T = s + W
        groups = self.attention.num_key_value_groups
        keys, values = _repeat_heads(k, groups), _repeat_heads(v, groups)  # (B, H, L, dh)
        position = real.long().cumsum(-1) - 1  # (B, L): the row's count of real tokens before the column
        sink = real & (position < s)
        mask = _window_mask(real, sink, W)
        a = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=self.attention.scaling)
        a = a.transpose(1, 2).reshape(B, L, H * dh)
        if settings.mode == "ahn" and L > T:
            writes = (real & ~sink)[:, s:L - W]  # column s + i writes at step i, read by query T + i
            m, state = self._read_memory(q[:, :, T:], keys[:, :, s:L - W], values[:, :, s:L - W], x[:, s:L - W],
                                         x[:, T:], writes)
            a = torch.cat([a[:, :T], a[:, T:] + m], dim=1)
            if layer is not None:
                layer.state = state
        if layer is not None:
            self._fill(layer, k, v, x, real, position, sink)
        return a

    def _read_memory(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, x_evicted: torch.Tensor,
                     x_query: torch.Tensor, writes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The chunked memory over the write stream, gates zeroed where a column must not write (padding, sinks):
        (m (B, N, H * dh) in q's dtype, final state)."""
        dtype = self.memory.out_proj.dtype
        m, state = self.memory(q.to(dtype), k.to(dtype), v.to(dtype), x_evicted.to(dtype), x_query.to(dtype),
                               write_mask=writes)
        return m.to(q.dtype), state

    def _fill(self, layer: AHNLayerCache, k: torch.Tensor, v: torch.Tensor, x: torch.Tensor, real: torch.Tensor,
              position: torch.Tensor, sink: torch.Tensor) -> None:
        """Leave a prefill's sinks, last W columns and counts in the decode cache."""
        L = k.shape[2]
        columns = torch.arange(max(0, L - layer.window), L, device=k.device)
        gates = self.memory.write_gates(x[:, columns].to(self.memory.out_proj.dtype))  # (B, H, n, n_gates)
        layer.allocate(k, gates)
        rows, sink_columns = sink.nonzero(as_tuple=True)
        slots = position[rows, sink_columns]
        layer.sink_keys[rows, :, slots] = k[rows, :, sink_columns]
        layer.sink_values[rows, :, slots] = v[rows, :, sink_columns]
        layer.sink_valid[rows, slots] = True
        ring = columns % layer.window
        layer.window_keys[:, :, ring], layer.window_values[:, :, ring] = k[:, :, columns], v[:, :, columns]
        layer.window_gates[:, :, ring] = gates
        layer.window_valid[:, ring] = (real & ~sink)[:, columns]
        layer.real_count = real.long().sum(-1)
        layer.columns = L

    def _step(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, x: torch.Tensor, real: torch.Tensor,
              settings: _Settings, layer: AHNLayerCache) -> torch.Tensor:
        """One new column: q (B, H, 1, dh), k, v (B, Hkv, 1, dh), x (B, d), real (B,) -> (B, 1, H * dh)."""
        if (layer.sinks, layer.window) != (settings.sinks, settings.window):
            raise UserError(f"this cache holds sinks={layer.sinks}, window={layer.window}, the model now has "
                            f"sinks={settings.sinks}, window={settings.window}: start a new cache")
        memory, groups = self.memory, self.attention.num_key_value_groups
        dtype = memory.out_proj.dtype
        c, s, W = layer.columns, layer.sinks, layer.window
        slot = c % W
        m = None
        if settings.mode == "ahn" and c >= s + W:
            # column c - W leaves the window now: write it (unless padding or a sink), then read with this query
            gates = layer.window_gates[:, :, slot] * layer.window_valid[:, slot, None, None]  # (B, H, n_gates)
            evicted_k = _repeat_heads(layer.window_keys[:, :, slot:slot + 1], groups)[:, :, 0]
            evicted_v = _repeat_heads(layer.window_values[:, :, slot:slot + 1], groups)[:, :, 0]
            m, layer.state = memory.step(q[:, :, 0].to(dtype), evicted_k.to(dtype), evicted_v.to(dtype), gates,
                                         x.to(dtype), layer.state)
        position = layer.real_count
        is_sink = real & (position < s)
        layer.window_keys[:, :, slot], layer.window_values[:, :, slot] = k[:, :, 0], v[:, :, 0]
        layer.window_gates[:, :, slot] = memory.write_gates(x[:, None].to(dtype))[:, :, 0]
        layer.window_valid[:, slot] = real & ~is_sink
        rows = is_sink.nonzero(as_tuple=True)[0]
        layer.sink_keys[rows, :, position[rows]] = k[rows, :, 0]
        layer.sink_values[rows, :, position[rows]] = v[rows, :, 0]
        layer.sink_valid[rows, position[rows]] = True
        layer.real_count = position + real.long()
        layer.columns = c + 1
        own = torch.zeros_like(layer.window_valid)
        own[:, slot] = ~real  # a padding query sees itself
        visible = torch.cat([layer.sink_valid, layer.window_valid | own], dim=1)  # (B, s + W)
        keys = _repeat_heads(torch.cat([layer.sink_keys, layer.window_keys], dim=2), groups)
        values = _repeat_heads(torch.cat([layer.sink_values, layer.window_values], dim=2), groups)
        a = F.scaled_dot_product_attention(q, keys, values, attn_mask=visible[:, None, None],
                                           scale=self.attention.scaling)
        a = a.transpose(1, 2).reshape(q.shape[0], 1, -1)
        return a if m is None else a + m[:, None].to(a.dtype)


def _text_config(model: nn.Module) -> Any:
    return model.config.get_text_config(decoder=True)


def _architecture_hash(model: nn.Module) -> str:
    """A short hash of the config fields that fix the shapes and attention pattern of the base."""
    config = _text_config(model)
    fields = {name: getattr(config, name, None) for name in _ARCHITECTURE_FIELDS}
    fields["layer_types"] = get_layer_types_and_kwargs(config)[0]
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class AHNHF(nn.Module):
    """A frozen transformers causal LM plus one trainable AHN memory per wrapped layer (see `wrap_hf`)."""

    def __init__(self, model: nn.Module, kind: str, sinks: int, window: int, chunk_size: int,
                 layers: list[int] | None) -> None:
        super().__init__()
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise UserError(f"AHN does not support model type {model_type!r}: use one of "
                            f"{', '.join(SUPPORTED_MODEL_TYPES)}")
        self.model = model
        self.kind, self.model_type = kind, model_type
        config = _text_config(model)
        self.layer_indices = self._choose_layers(config, layers)
        self.set_budget(sinks, window)
        decoder_layers = model.get_decoder().layers
        if any(isinstance(decoder_layers[i].self_attn.__dict__.get("forward"), _AHNAttention)
               for i in self.layer_indices):
            raise UserError("this model is already wrapped by AHN: wrap a fresh copy of the base")
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        base_parameter = next(model.parameters())
        memory_dtype = torch.promote_types(base_parameter.dtype, torch.float32)
        self.memories = nn.ModuleDict({
            str(i): AHNMemory(kind, config.hidden_size, config.num_attention_heads, head_dim, chunk_size)
            for i in self.layer_indices}).to(device=base_parameter.device, dtype=memory_dtype)
        for i in self.layer_indices:
            attention = decoder_layers[i].self_attn
            attention.forward = _AHNAttention(attention, self.memories[str(i)], model_type in _QK_NORM_TYPES)

    @staticmethod
    def _choose_layers(config: Any, layers: list[int] | None) -> list[int]:
        layer_types = get_layer_types_and_kwargs(config)[0]
        full = [i for i, kind in enumerate(layer_types) if kind == "full_attention"]
        if layers is None:
            return full
        for i in layers:
            if i not in full:
                raise UserError(f"layer {i} cannot take an AHN memory: only full-attention layers can, here "
                                f"{full}")
        return sorted(set(layers))

    # ---- budget and parameters

    def set_budget(self, sinks: int, window: int) -> None:
        """The attention budget T = sinks + window of every wrapped layer (randomised per batch in training)."""
        check_budget(sinks, window)
        context = _text_config(self.model).max_position_embeddings
        if sinks + window > context:
            raise UserError(f"AHN budget sinks + window = {sinks + window} exceeds the model's "
                            f"max_position_embeddings = {context}: give a smaller window")
        self.sinks, self.window = sinks, window

    @property
    def budget(self) -> int:
        return self.sinks + self.window

    def ahn_parameters(self) -> list[nn.Parameter]:
        return list(self.memories.parameters())

    @property
    def config(self) -> Any:
        """The base's config (what `HFPolicy` reads its context length from)."""
        return self.model.config

    @property
    def generation_config(self) -> Any:
        return getattr(self.model, "generation_config", None)

    def save_pretrained(self, path: str | Path, **kwargs: Any) -> None:
        """Refused: the base is unchanged, only the memories are new (what `HFPolicy.save` would call)."""
        raise UserError(f"an AHN-wrapped model saves only its memories: save_hf_ahn(wrapped, '{path}/ahn.pt'), "
                        "and keep the base model's own folder")

    # ---- forward passes

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, cache: Cache | None = None, use_cache: bool = False,
                logits_to_keep: int | torch.Tensor = 0, use_memory: bool = True, full_attention: bool = False,
                **kwargs: Any) -> Any:
        """The base model's output (`.logits`, `.cache`) under sinks + SWA with the memories (or without them:
        use_memory=False, the sinks + SWA baseline; or full_attention=True: the unchanged base, the teacher).
        With use_cache the wrapper makes an `AHNCache` and later calls continue it token by token."""
        if attention_mask is not None and attention_mask.dim() != 2:
            raise UserError(f"AHNHF takes a 2D (batch, length) attention mask, got {attention_mask.dim()}D: pass "
                            "the tokenizer's padding mask")
        mode: Mode = "full" if full_attention else ("ahn" if use_memory else "swa")
        if mode == "full" and isinstance(cache, AHNCache):
            raise UserError("an AHNCache holds a sliding window: decode full attention with a new cache")
        if mode != "full" and use_cache and cache is None:
            cache = self.new_cache()
        padding = None if attention_mask is None else attention_mask.bool()
        settings = _Settings(mode, self.sinks, self.window, padding)
        return self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                          cache=cache, use_cache=use_cache, logits_to_keep=logits_to_keep, ahn_settings=settings,
                          **kwargs)

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               use_memory: bool = True) -> torch.Tensor:
        """Logits (B, L, V) of the parallel forward (differentiable in the memories); rows may be left-padded."""
        return self(input_ids, attention_mask=attention_mask, position_ids=_positions(attention_mask),
                    use_memory=use_memory).logits

    def teacher_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, L, V) of the frozen base with full causal attention (no gradients)."""
        with torch.no_grad():
            return self(input_ids, attention_mask=attention_mask, position_ids=_positions(attention_mask),
                        full_attention=True).logits

    def new_cache(self) -> AHNCache:
        return AHNCache(_text_config(self.model), self.layer_indices, self.sinks, self.window)

    @torch.no_grad()
    def prefill(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, AHNCache]:
        """Logits (B, L, V) of the parallel forward and the constant-size decode cache it leaves."""
        output = self(input_ids, attention_mask=attention_mask, position_ids=_positions(attention_mask),
                      use_cache=True)
        return output.logits, output.cache

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, cache: AHNCache, attention_mask: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, AHNCache]:
        """Logits (B, V) after one more token per row (B,), continuing `cache` in place; `attention_mask` covers
        every column so far (None: no padding) and sets the RoPE positions."""
        positions = _positions(attention_mask)
        position_ids = None if positions is None else positions[:, -1:]
        output = self(tokens[:, None], attention_mask=attention_mask, position_ids=position_ids, cache=cache,
                      use_cache=True)
        return output.logits[:, -1], output.cache


def _positions(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """RoPE positions of left-padded rows: 0 at each row's first real token (padding at 0 too); None without a
    mask (transformers counts from the cache)."""
    if attention_mask is None:
        return None
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def wrap_hf(model: nn.Module, kind: str = "gdn", sinks: int = 4, window: int = 1020, chunk_size: int = 64,
            layers: list[int] | None = None) -> AHNHF:
    """Wrap a transformers causal LM (Llama, Qwen2, Qwen3, Gemma-3) in place: its parameters are frozen and every
    full-attention layer (or those in `layers`) gets a trainable, zero-output AHN memory of `kind`."""
    return AHNHF(model, kind, sinks, window, chunk_size, layers)


@torch.no_grad()
def ahn_generate(wrapped: AHNHF, input_ids: torch.Tensor, max_new_tokens: int,
                 attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Greedy decoding with the constant-size cache: (B, L + max_new_tokens) token ids (left padding allowed
    through `attention_mask`)."""
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    output = wrapped(input_ids, attention_mask=attention_mask, position_ids=_positions(attention_mask),
                     use_cache=True, logits_to_keep=1)
    tokens, cache = [output.logits[:, -1].argmax(-1)], output.cache
    for _ in range(max_new_tokens - 1):
        attention_mask = torch.cat([attention_mask, torch.ones_like(attention_mask[:, :1])], dim=1)
        logits, cache = wrapped.step(tokens[-1], cache, attention_mask)
        tokens.append(logits.argmax(-1))
    return torch.cat([input_ids, torch.stack(tokens[:max_new_tokens], dim=1)], dim=1)


# ---- checkpoints


def _identity(wrapped: AHNHF) -> dict[str, Any]:
    return {"model_type": wrapped.model_type, "architecture": _architecture_hash(wrapped.model),
            "kind": wrapped.kind, "layers": list(wrapped.layer_indices)}


def save_hf_ahn(wrapped: AHNHF, path: str | Path) -> Path:
    """Save only the AHN parameters, tagged with the base they belong to, to `path` (a .pt file), atomically."""
    path = Path(path)
    state = {"format": _FORMAT, "version": 1, **_identity(wrapped),
             "parameters": {n: p.detach().cpu() for n, p in wrapped.memories.named_parameters()}}
    with atomic_write(path, "wb") as handle:
        torch.save(state, handle)
    return path


def load_hf_ahn(wrapped: AHNHF, path: str | Path) -> AHNHF:
    """Load AHN parameters saved by `save_hf_ahn` into `wrapped`; a file for another base, memory kind or set
    of layers is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no AHN checkpoint at {path}: check the path (save_hf_ahn writes it)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds on a torn or foreign file
        raise UserError(f"{path} is not a readable AHN checkpoint ({type(error).__name__}): re-save it") from None
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise UserError(f"{path} is not an HF AHN checkpoint (no {_FORMAT} tag): pass a file saved by save_hf_ahn")
    expected = _identity(wrapped)
    if state["kind"] != expected["kind"]:
        raise UserError(f"{path} holds {state['kind']} memories, the model has {expected['kind']}: wrap with "
                        f"kind={state['kind']!r} or load another checkpoint")
    if (state["model_type"], state["architecture"]) != (expected["model_type"], expected["architecture"]):
        raise UserError(f"{path} was trained for another base ({state['model_type']}, architecture "
                        f"{state['architecture']}; this is {expected['model_type']}, {expected['architecture']}): "
                        "load it into that base")
    if state["layers"] != expected["layers"]:
        raise UserError(f"{path} holds memories for layers {state['layers']}, the model wraps "
                        f"{expected['layers']}: wrap with layers={state['layers']}")
    wrapped.memories.load_state_dict(state["parameters"])
    return wrapped
