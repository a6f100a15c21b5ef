"""TRM (Tiny Recursive Model) and HRM as one module with an `arch` switch.

Paper: "Less is More: Recursive Reasoning with Tiny Networks", arXiv 2510.04871; official code
SamsungSAILMontreal/TinyRecursiveModels. HRM: arXiv 2506.21734 (sapientinc/HRM).

Notation: x = embedded question, y = answer state (code z_H), z = latent (code z_L), all (B, P+L, D).

    latent_recursion(x, y, z, n): repeat n: z = net(z, y + x)
                                  y = net(y, z)
    deep_recursion: T-1 cycles under no_grad, then one cycle with gradient through all n+1 calls
    logits = lm_head(y)[:, P:], q = q_head(y[:, 0])

HRM (arch="hrm") has two networks f_L (z) and f_H (y) and back-propagates through only the last f_L and
f_H call ("1-step gradient"). One forward call is one supervision step; the caller keeps the carry.

Fast path and plain reference: `RecursiveReasoner(config, fast=True)` (the default) runs the no-grad cycles
under `torch.inference_mode`, adds y + x once per cycle instead of once per latent update (y is fixed during
the n z-updates) and scales the (V, D) token table by sqrt(D) instead of the (B, L, D) embeddings.
On a CPU the fast recursion also runs the batch a few samples at a time, so that activations stay in cache
(`samples_per_chunk`). `fast=False` runs `embed_reference`, `recursion_reference` (the loop above written out)
and the layers' plain attention, RoPE and RMSNorm (layers.py); tests/systems/trm/test_trm_fast_path.py checks
that both give the same values and gradients. `compile_networks()` wraps each network in `torch.compile` (`compile: true` in training).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from reasonlab.systems.trm.layers import Block, Linear, ReasoningModule, swiglu_inner_size, trunc_normal_

__all__ = ["CACHE_BYTES", "MIN_CHUNK_SAMPLES", "ModelConfig", "PuzzleEmbedding", "RecursiveReasoner", "StepOutput"]

# Bytes of the widest activation in one chunk of the CPU fast path (benchmarks/trm_step.py --chunks: on our 2 MiB-L2
# Xeon, chunks of 8 samples at D=128 beat 2, 16 and the whole batch of 32, and matched 4). Where fewer than
# MIN_CHUNK_SAMPLES samples fit, the batch runs whole: at D=512 (1.2 to 2 MiB per sample) chunks of 2, 3 and 8
# were 1 to 9% slower than none.
CACHE_BYTES = 4 * 2**20
MIN_CHUNK_SAMPLES = 4


@dataclass(frozen=True)
class ModelConfig:
    """Network shape; defaults are the paper's TRM-Att (D=512, 8 heads, 2 layers, T=3, n=6, P=16)."""

    vocab_size: int
    seq_len: int  # L, grid cells
    num_puzzle_ids: int = 1
    arch: Literal["trm", "hrm"] = "trm"
    mixer: Literal["attention", "mlp"] = "attention"
    hidden_size: int = 512
    num_heads: int = 8
    expansion: float = 4.0
    num_layers: int = 2  # per network: TRM has one net; HRM has f_L and f_H of this many layers each
    n: int = 6  # latent recursions per cycle (code L_cycles)
    T: int = 3  # cycles per supervision step (code H_cycles)
    prefix_len: int = 16  # P; position 0 carries the puzzle embedding
    ffn_multiple: int = 256  # SwiGLU inner size rounded up to this multiple
    one_step_gradient: bool = False  # TRM ablation: back-propagate through the last z and y call only
    norm_eps: float = 1e-5

    def to_dict(self) -> dict:
        return asdict(self)


class PuzzleEmbedding(nn.Module):
    """Per-puzzle D-vectors kept as a buffer and trained by sign-SGD on the rows of the batch (not EMA'd).

    In training mode with grad enabled, `forward` hands out a leaf copy of the batch rows; after backward,
    `SignSGD` (optim.py) reads its grad and updates the table.
    """

    def __init__(self, num_ids: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(num_ids, dim))
        self.local: torch.Tensor | None = None
        self.local_ids: torch.Tensor | None = None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = self.weight[ids]
        if self.training and torch.is_grad_enabled():
            rows = rows.detach().clone().requires_grad_(True)
            self.local, self.local_ids = rows, ids
        return rows


@dataclass
class StepOutput:
    y: torch.Tensor  # (B, P+L, D), detached
    z: torch.Tensor  # (B, P+L, D), detached
    logits: torch.Tensor  # (B, L, V)
    q_halt: torch.Tensor  # (B,)
    q_continue: torch.Tensor  # (B,)


class RecursiveReasoner(nn.Module):
    """One supervision step of TRM or HRM: forward(inputs, puzzle_ids, y, z) -> StepOutput.

    `fast=False` runs the plain reference (`embed_reference`, `recursion_reference`, explicit-softmax attention)
    with the same weights and state_dict keys.
    """

    def __init__(self, config: ModelConfig, fast: bool = True, chunk_samples: int | None = None) -> None:
        super().__init__()
        self.config = c = config
        self.fast = fast
        self.chunk_samples = chunk_samples  # None: from CACHE_BYTES on CPU, the whole batch elsewhere
        if c.prefix_len < 1:
            raise ValueError("prefix_len must be >= 1: position 0 holds the puzzle embedding read by the q head")
        seq = c.prefix_len + c.seq_len
        self.embed_scale = math.sqrt(c.hidden_size)
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        trunc_normal_(self.embed_tokens.weight, std=1.0 / math.sqrt(c.hidden_size))
        self.puzzle_emb = PuzzleEmbedding(c.num_puzzle_ids, c.hidden_size)

        def make_net() -> ReasoningModule:
            return ReasoningModule(
                [
                    Block(c.hidden_size, c.num_heads, seq, c.mixer, c.expansion, c.ffn_multiple, c.norm_eps, fast)
                    for _ in range(c.num_layers)
                ]
            )

        if c.arch == "trm":
            self.net = make_net()
        elif c.arch == "hrm":
            self.low = make_net()  # f_L, updates z
            self.high = make_net()  # f_H, updates y
        else:
            raise ValueError(f"arch must be 'trm' or 'hrm', got {c.arch!r}")
        self.lm_head = Linear(c.hidden_size, c.vocab_size)
        self.q_head = nn.Linear(c.hidden_size, 2, bias=True)
        with torch.no_grad():
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)
        # fixed random initial states (not trained), broadcast to every position
        self.register_buffer("y_init", trunc_normal_(torch.empty(c.hidden_size), std=1.0))
        self.register_buffer("z_init", trunc_normal_(torch.empty(c.hidden_size), std=1.0))

    def num_parameters(self) -> int:
        """Trainable parameters (the puzzle-embedding table is a buffer, as in the paper's counts)."""
        return sum(p.numel() for p in self.parameters())

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (batch, self.config.prefix_len + self.config.seq_len, self.config.hidden_size)
        return self.y_init.expand(shape).clone(), self.z_init.expand(shape).clone()

    def networks(self) -> list[nn.Module]:
        """The recursed networks: [net] for TRM, [f_L, f_H] for HRM."""
        return [self.net] if self.config.arch == "trm" else [self.low, self.high]

    def compile_networks(self, **options) -> None:
        """`torch.compile` each network in place (state_dict keys and deep copies stay as they were)."""
        for network in self.networks():
            network.compile(**options)

    def embed(self, inputs: torch.Tensor, puzzle_ids: torch.Tensor) -> torch.Tensor:
        """Tokens (B, L) and puzzle ids (B,) -> x (B, P+L, D), scaled by sqrt(D)."""
        if not self.fast:
            return self.embed_reference(inputs, puzzle_ids)
        # scale the (V, D) table rather than the (B, L, D) lookups, and build the prefix in one cat
        tokens = F.embedding(inputs, self.embed_scale * self.embed_tokens.weight)  # (B, L, D)
        puzzle = self.embed_scale * self.puzzle_emb(puzzle_ids).unsqueeze(1).to(tokens.dtype)  # (B, 1, D)
        blank = tokens.new_zeros(inputs.shape[0], self.config.prefix_len - 1, self.config.hidden_size)  # (B, P-1, D)
        return torch.cat([puzzle, blank, tokens], dim=1)

    def embed_reference(self, inputs: torch.Tensor, puzzle_ids: torch.Tensor) -> torch.Tensor:
        """The plain embedding: look up, build the prefix, scale the whole (B, P+L, D) result."""
        tokens = self.embed_tokens(inputs)  # (B, L, D)
        prefix = tokens.new_zeros(inputs.shape[0], self.config.prefix_len, self.config.hidden_size)
        prefix = torch.cat([self.puzzle_emb(puzzle_ids).unsqueeze(1).to(tokens.dtype), prefix[:, 1:]], dim=1)
        return self.embed_scale * torch.cat([prefix, tokens], dim=1)

    def latent_recursion(
        self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, n: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        question_and_answer = y + x  # y is fixed during the n latent updates: one add, not n
        for _ in range(n):
            z = self.net(z, question_and_answer)  # the latent sees the question
        y = self.net(y, z)  # the answer never sees x directly
        return y, z

    def latent_recursion_reference(
        self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, n: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for _ in range(n):
            z = self.net(z, y + x)
        y = self.net(y, z)
        return y, z

    def activation_bytes_per_sample(self) -> int:
        """Bytes of the widest activation one sample makes in a block: the SwiGLU gate-and-up output over
        channels, or over positions in TRM-MLP's token mixer (float32)."""
        c = self.config
        seq = c.prefix_len + c.seq_len
        widest = seq * 2 * swiglu_inner_size(c.hidden_size, c.expansion, c.ffn_multiple)
        if c.mixer == "mlp":
            widest = max(widest, c.hidden_size * 2 * swiglu_inner_size(seq, c.expansion, c.ffn_multiple))
        return 4 * widest

    def samples_per_chunk(self, batch: int, device: torch.device) -> int:
        """At most how many samples the fast recursion runs at a time (see `recursion`)."""
        if self.chunk_samples is not None:
            return max(1, min(self.chunk_samples, batch))
        fitting = CACHE_BYTES // self.activation_bytes_per_sample()
        if device.type != "cpu" or fitting < MIN_CHUNK_SAMPLES:
            return batch
        return min(fitting, batch)

    def recursion(
        self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Deep recursion of one supervision step; only the last cycle (or last call) keeps gradient.

        Samples never interact, so the fast path runs the batch a few samples at a time (`samples_per_chunk`):
        on a CPU each chunk's activations then stay in cache through the whole recursion, where the whole
        batch's would stream through memory at every elementwise op. The no-grad part runs under
        inference_mode. Its inference tensors then enter the differentiable part only through additions
        (y + x, z + injection), which save no input for backward.
        """
        if not self.fast:
            return self.recursion_reference(x, y, z)
        batch = x.shape[0]
        chunks = -(-batch // self.samples_per_chunk(batch, x.device))  # as even as can be: 32 by 10 -> 4 x 8
        if chunks == 1:
            return self._recursion_fast(x, y, z)
        parts = [self._recursion_fast(*p) for p in zip(*(t.tensor_split(chunks) for t in (x, y, z)), strict=True)]
        return torch.cat([y for y, _ in parts]), torch.cat([z for _, z in parts])

    def _recursion_fast(
        self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.arch == "hrm":
            return self._hrm_recursion(x, y, z)
        c = self.config
        with torch.inference_mode():
            for _ in range(c.T - 1):
                y, z = self.latent_recursion(x, y, z, c.n)
            if c.one_step_gradient:
                question_and_answer = y + x
                for _ in range(c.n - 1):
                    z = self.net(z, question_and_answer)
        if c.one_step_gradient:
            z = self.net(z, y + x)
            return self.net(y, z), z
        return self.latent_recursion(x, y, z, c.n)

    def _hrm_recursion(
        self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        with torch.inference_mode():
            for cycle in range(c.T):
                question_and_answer = y + x  # y is fixed during the cycle's f_L calls
                last_cycle = cycle == c.T - 1
                for _ in range(c.n - 1 if last_cycle else c.n):
                    z = self.low(z, question_and_answer)
                if not last_cycle:
                    y = self.high(y, z)
        z = self.low(z, y + x)
        return self.high(y, z), z

    def recursion_reference(
        self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The plain deep recursion (no_grad, one add per call), kept to test `recursion` against."""
        c = self.config
        if c.arch == "trm":
            with torch.no_grad():
                for _ in range(c.T - 1):
                    y, z = self.latent_recursion_reference(x, y, z, c.n)
                if c.one_step_gradient:
                    for _ in range(c.n - 1):
                        z = self.net(z, y + x)
            if c.one_step_gradient:
                z = self.net(z, y + x)
                return self.net(y, z), z
            return self.latent_recursion_reference(x, y, z, c.n)
        # hrm: T cycles of (n f_L calls, one f_H call); all but the very last f_L and f_H under no_grad
        with torch.no_grad():
            for cycle in range(c.T):
                for step in range(c.n):
                    if not (cycle == c.T - 1 and step == c.n - 1):
                        z = self.low(z, y + x)
                if cycle != c.T - 1:
                    y = self.high(y, z)
        z = self.low(z, y + x)
        y = self.high(y, z)
        return y, z

    def forward(
        self, inputs: torch.Tensor, puzzle_ids: torch.Tensor, y: torch.Tensor, z: torch.Tensor
    ) -> StepOutput:
        x = self.embed(inputs, puzzle_ids)  # (B, P+L, D)
        y, z = self.recursion(x, y, z)
        logits = self.lm_head(y)[:, self.config.prefix_len :]  # (B, L, V)
        q = self.q_head(y[:, 0]).float()  # (B, 2)
        return StepOutput(y.detach(), z.detach(), logits, q[:, 0], q[:, 1])
