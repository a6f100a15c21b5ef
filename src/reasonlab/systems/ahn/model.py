"""An AHN student around a frozen tinylm decoder (spec section 1): sinks + sliding-window attention, the tokens
that leave the window written into a recurrent memory per layer, its readout added before the attention output
projection.

Index alignment (spec pitfall 1), with the budget T = s sinks + W window tokens: query t attends to keys j <= t with
t - j < W or j < s; for t >= T the memory holds exactly the evicted tokens s .. t - W (inclusive). So the evicted
stream is e_i = token s + i and step i of the memory is read by query T + i. Sequences of at most T tokens behave
exactly like the base model, and with a zero-initialised memory output so does every sequence under sinks + SWA.

    student = AHNStudent(base_model, kind="gdn", sinks=4, window=28)
    logits = student(tokens)                       # parallel, training and evaluation
    logits, cache = student.prefill(prompt)        # parallel prefill that leaves a constant-size decode cache
    for token in new_tokens.T: logits, cache = student.step(token, cache)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from reasonlab.errors import UserError
from reasonlab.runs import atomic_write
from reasonlab.systems.ahn.memory import AHNMemory
from reasonlab.train.tinylm import TinyTransformer, apply_rope, attention_reference, rope_tables

__all__ = [
    "AHNStudent",
    "DecodeCache",
    "LayerCache",
    "causal_logits",
    "check_budget",
    "load_ahn",
    "save_ahn",
    "window_mask",
]


def check_budget(sinks: int, window: int) -> None:
    """One-line error for a budget no attention can have (both students call this)."""
    if sinks < 0 or window < 1:
        raise UserError(f"AHN budget sinks={sinks}, window={window}: need sinks >= 0 and window >= 1")


def causal_logits(model: TinyTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """Logits (B, L, V) of a tinylm under full causal attention: the teacher."""
    B, L = tokens.shape
    positions = torch.arange(L, device=tokens.device).expand(B, L)
    causal = torch.ones(L, L, dtype=torch.bool, device=tokens.device).tril()[None, None]
    return model(tokens, positions, causal)


def window_mask(length: int, sinks: int, window: int, device: torch.device | None = None) -> torch.Tensor:
    """(1, 1, L, L) bool: query t sees key j when j <= t and (t - j < window or j < sinks)."""
    t = torch.arange(length, device=device)[:, None]
    j = torch.arange(length, device=device)[None, :]
    return ((j <= t) & ((t - j < window) | (j < sinks)))[None, None]


@dataclass
class LayerCache:
    """One layer's decode state: sink and window keys/values (post-RoPE), the write gates of the window tokens
    (computed when a token arrives, used when it is evicted: H or 2H scalars per token, spec section 1) and the
    memory state."""

    keys: torch.Tensor  # (B, H, s + W, dh): slots 0..s-1 sinks, then a ring of W window slots
    values: torch.Tensor
    gates: torch.Tensor  # (B, H, s + W, n_gates)
    state: torch.Tensor | None = None  # (B, H, dh, dh)


@dataclass
class DecodeCache:
    layers: list[LayerCache] = field(default_factory=list)
    position: int = 0  # tokens seen so far
    use_memory: bool = True  # False: the sinks + SWA baseline (no gates, no state)

    def nbytes(self) -> int:
        """Bytes held, independent of how many tokens were decoded."""
        total = 0
        for layer in self.layers:
            for tensor in (layer.keys, layer.values, layer.gates, layer.state):
                total += 0 if tensor is None else tensor.numel() * tensor.element_size()
        return total


class AHNStudent(nn.Module):
    """The frozen `base` (its parameters stay untouched and untrained) plus one trainable AHN memory per layer."""

    def __init__(self, base: TinyTransformer, kind: str = "gdn", sinks: int = 4, window: int = 28,
                 chunk_size: int = 64) -> None:
        super().__init__()
        if base.config.position_encoding != "rope":
            raise UserError("AHN needs a RoPE tinylm (position_encoding='rope'): the memory reads post-RoPE keys")
        self.base = base
        for parameter in self.base.parameters():
            parameter.requires_grad_(False)
        config = base.config
        self.memories = nn.ModuleList(
            AHNMemory(kind, config.d_model, config.n_head, config.head_dim, chunk_size=chunk_size)
            for _ in range(config.n_layer))
        self.kind = kind
        self.set_budget(sinks, window)

    def set_budget(self, sinks: int, window: int) -> None:
        """The attention budget T = sinks + window (randomised per batch in training)."""
        check_budget(sinks, window)
        self.sinks, self.window = sinks, window

    @property
    def budget(self) -> int:
        return self.sinks + self.window

    def ahn_parameters(self) -> list[nn.Parameter]:
        return list(self.memories.parameters())

    # ---- parallel forward

    def forward(self, idx: torch.Tensor, use_memory: bool = True) -> torch.Tensor:
        """Logits (B, L, V) under sinks + SWA, with the memory (or without it: the sinks + SWA baseline)."""
        return self._parallel(idx, use_memory, None)

    @torch.no_grad()
    def prefill(self, idx: torch.Tensor, use_memory: bool = True) -> tuple[torch.Tensor, DecodeCache]:
        """Logits (B, L, V) of the parallel forward and the decode cache it leaves: the sinks, the last W tokens in
        their ring slots and each memory's final state (all evicted tokens written in one chunked call)."""
        cache = self.new_cache(idx.shape[0], use_memory)
        logits = self._parallel(idx, use_memory, cache)
        cache.position = idx.shape[1]
        return logits, cache

    def _parallel(self, idx: torch.Tensor, use_memory: bool, cache: DecodeCache | None) -> torch.Tensor:
        B, L = idx.shape
        positions = torch.arange(L, device=idx.device).expand(B, L)
        cos, sin = rope_tables(positions, self.base.config.head_dim, self.base.config.rope_base)
        mask = window_mask(L, self.sinks, self.window, idx.device)
        x = self.base.embed(idx)
        layers = cache.layers if cache is not None else [None] * len(self.memories)
        for block, memory, layer in zip(self.base.blocks, self.memories, layers, strict=True):
            x = x + self._attention(block, memory if use_memory else None, block.attn_norm(x), cos, sin, mask,
                                    layer)
            x = x + block.mlp(block.mlp_norm(x))
        return self.base.norm(x) @ self.base.embed.weight.T

    def _attention(self, block: nn.Module, memory: AHNMemory | None, x: torch.Tensor, cos: torch.Tensor,
                   sin: torch.Tensor, mask: torch.Tensor, layer: LayerCache | None = None) -> torch.Tensor:
        attention = block.attn
        B, L, _ = x.shape
        q, k, v = attention.qkv(x).view(B, L, 3, attention.n_head, attention.head_dim).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        a = attention_reference(q, k, v, mask).transpose(1, 2).reshape(B, L, -1)  # (B, L, H*dh), before o_proj
        T, s, W = self.budget, self.sinks, self.window
        if memory is not None and L > T:
            m, state = memory(q[:, :, T:], k[:, :, s:L - W], v[:, :, s:L - W], x[:, s:L - W], x[:, T:])
            a = torch.cat([a[:, :T], a[:, T:] + m], dim=1)
            if layer is not None:
                layer.state = state
        if layer is not None:
            self._keep_recent(layer, k, v, memory.write_gates(x) if memory is not None else None)
        return attention.proj(a)

    def _keep_recent(self, layer: LayerCache, k: torch.Tensor, v: torch.Tensor, gates: torch.Tensor | None) -> None:
        """Copy the sinks and the last W tokens of a prefill (and their write gates) into their cache slots."""
        L = k.shape[2]
        for position in [*range(min(self.sinks, L)), *range(max(self.sinks, L - self.window), L)]:
            slot = self._slot(position)
            layer.keys[:, :, slot], layer.values[:, :, slot] = k[:, :, position], v[:, :, position]
            if gates is not None:
                layer.gates[:, :, slot] = gates[:, :, position]

    # ---- constant-size decode

    def new_cache(self, batch_size: int = 1, use_memory: bool = True) -> DecodeCache:
        """An empty decode cache; `use_memory=False` decodes as the sinks + SWA baseline."""
        config = self.base.config
        device = self.base.embed.weight.device
        shape = (batch_size, config.n_head, self.budget, config.head_dim)
        layers = [LayerCache(torch.zeros(shape, device=device), torch.zeros(shape, device=device),
                             torch.zeros(batch_size, config.n_head, self.budget,
                                         memory.n_gates if use_memory else 0, device=device))
                  for memory in self.memories]
        return DecodeCache(layers, use_memory=use_memory)

    def _slot(self, position: int) -> int:
        """Cache slot of the token at `position`: sinks keep their own slot, window tokens share a ring."""
        return position if position < self.sinks else self.sinks + (position - self.sinks) % self.window

    @torch.no_grad()
    def step(self, token: torch.Tensor, cache: DecodeCache) -> tuple[torch.Tensor, DecodeCache]:
        """Logits (B, V) for the next token after `token` (B,), updating `cache` in place."""
        t = cache.position
        B = token.shape[0]
        positions = torch.full((B, 1), t, device=token.device)
        cos, sin = rope_tables(positions, self.base.config.head_dim, self.base.config.rope_base)
        x = self.base.embed(token[:, None])
        for block, memory, layer in zip(self.base.blocks, self.memories, cache.layers, strict=True):
            x = x + self._attention_step(block, memory if cache.use_memory else None, layer, block.attn_norm(x),
                                         cos, sin, t)
            x = x + block.mlp(block.mlp_norm(x))
        cache.position += 1
        return (self.base.norm(x) @ self.base.embed.weight.T)[:, 0], cache

    def _attention_step(self, block: nn.Module, memory: AHNMemory | None, layer: LayerCache, x: torch.Tensor,
                        cos: torch.Tensor, sin: torch.Tensor, t: int) -> torch.Tensor:
        attention = block.attn
        B = x.shape[0]
        q, k, v = attention.qkv(x).view(B, 1, 3, attention.n_head, attention.head_dim).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        m = None
        if memory is not None and t >= self.budget:  # token t - W leaves the window: write it, read with q
            slot = self._slot(t - self.window)
            m, layer.state = memory.step(q[:, :, 0], layer.keys[:, :, slot], layer.values[:, :, slot],
                                         layer.gates[:, :, slot], x[:, 0], state=layer.state)
            m = m[:, None]
        slot = self._slot(t)
        layer.keys[:, :, slot], layer.values[:, :, slot] = k[:, :, 0], v[:, :, 0]
        if memory is not None:
            layer.gates[:, :, slot] = memory.write_gates(x)[:, :, 0]
        seen = min(t + 1, self.budget)
        mask = torch.zeros(1, 1, 1, self.budget, dtype=torch.bool, device=x.device)
        mask[..., :seen] = True
        a = attention_reference(q, layer.keys, layer.values, mask).transpose(1, 2).reshape(B, 1, -1)
        if m is not None:
            a = a + m
        return attention.proj(a)


def _base_identity(student: AHNStudent) -> dict[str, object]:
    return {"base": student.base.config.model_dump(mode="json"), "kind": student.kind}


def save_ahn(student: AHNStudent, path: str | Path) -> Path:
    """Save only the AHN parameters (and what they were trained for) to `path` (a .pt file), atomically."""
    path = Path(path)
    state = {"format": "reasonlab-ahn", "version": 1, **_base_identity(student),
             "parameters": {n: p.detach().cpu() for n, p in student.memories.named_parameters()}}
    with atomic_write(path, "wb") as handle:
        torch.save(state, handle)
    return path


def load_ahn(student: AHNStudent, path: str | Path) -> AHNStudent:
    """Load AHN parameters saved by `save_ahn` into `student`; a file for another base model or memory type is a
    one-line error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no AHN checkpoint at {path}: check the path (reasonlab ahn distill writes ahn.pt)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds on a torn or foreign file
        raise UserError(f"{path} is not a readable AHN checkpoint ({type(error).__name__}): re-save it") from None
    if not isinstance(state, dict) or state.get("format") != "reasonlab-ahn":
        raise UserError(f"{path} is not an AHN checkpoint (no reasonlab-ahn tag): pass a file saved by save_ahn")
    if state["kind"] != student.kind:
        raise UserError(f"{path} holds a {state['kind']} memory, the model has {student.kind}: use "
                        f"--memory {state['kind']} or another checkpoint")
    if state["base"] != _base_identity(student)["base"]:
        raise UserError(f"{path} was trained for another base model (its config differs): load it into that base")
    student.memories.load_state_dict(state["parameters"])
    return student
