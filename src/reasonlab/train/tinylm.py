"""tinylm: a small from-scratch causal transformer and tokenizer for synthetic tasks, as a `TrainablePolicy`.

The model is nanoGPT-shaped with the modern parts (RoPE, RMSNorm, SwiGLU, no biases). `TinyLM` wraps it
with a character- or word-level `Tokenizer` and implements the `TrainablePolicy` protocol, so an experiment
that runs on a tinylm runs on Gemma (`hf:embedded`) without code changes:

    tokenizer = Tokenizer.from_texts(["12+7=19"], level="char")
    policy = TinyLM.create(TinyLMConfig(vocab_size=len(tokenizer)), tokenizer, seed=0)
    policy.generate(["12+7="], SamplingParams(temperature=1.0, max_tokens=4, seed=0))

Generation is batched over prompts of different lengths (left padding, per-row RoPE positions) with a KV
cache; finished rows leave the batch. `Generation.logprobs` equals `TinyLM.logprobs` for the same tokens.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field
from torch import nn

from reasonlab.errors import UserError
from reasonlab.llm.base import BaseLLM, Generation, Prompt, SamplingParams, truncate_at_stop
from reasonlab.runs import atomic_write, atomic_write_json

__all__ = ["TinyLM", "TinyLMConfig", "TinyTransformer", "Tokenizer"]

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")


class Tokenizer:
    """Character- or word-level vocabulary; ids 0..3 are <pad>, <bos>, <eos>, <unk>."""

    def __init__(self, tokens: Sequence[str], level: Literal["char", "word"] = "char") -> None:
        if level not in ("char", "word"):
            raise UserError(f"tokenizer level {level!r} is unknown: use 'char' or 'word'")
        vocab = list(SPECIAL_TOKENS) + [t for t in dict.fromkeys(tokens) if t not in SPECIAL_TOKENS]
        self.level = level
        self.tokens = vocab
        self.index = {token: i for i, token in enumerate(vocab)}

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], level: Literal["char", "word"] = "char", extra: Sequence[str] = ()
    ) -> Tokenizer:
        """Build the vocabulary from every character (or whitespace-separated word) of `texts`, sorted."""
        units: set[str] = set(extra)
        for text in texts:
            units.update(text if level == "char" else text.split())
        return cls(sorted(units), level)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def bos_id(self) -> int:
        return 1

    @property
    def eos_id(self) -> int:
        return 2

    @property
    def unk_id(self) -> int:
        return 3

    def encode(self, text: str) -> list[int]:
        units = text if self.level == "char" else text.split()
        return [self.index.get(unit, self.unk_id) for unit in units]

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        units = [self.tokens[i] for i in ids if not (skip_special and i < len(SPECIAL_TOKENS))]
        return "".join(units) if self.level == "char" else " ".join(units)

    def to_dict(self) -> dict:
        return {"level": self.level, "tokens": self.tokens}

    @classmethod
    def from_dict(cls, data: dict) -> Tokenizer:
        return cls(data["tokens"], data["level"])


class TinyLMConfig(BaseModel):
    """Shape of a tinylm; defaults fit the 2-core CPU plans of the specs (~0.4M parameters)."""

    vocab_size: int = Field(..., ge=len(SPECIAL_TOKENS), description="tokenizer size")
    context_length: int = Field(
        128, ge=1, description="positions seen in training (RoPE extrapolates past it)"
    )
    n_layer: int = Field(3, ge=1, description="transformer blocks")
    n_head: int = Field(4, ge=1, description="attention heads")
    d_model: int = Field(96, ge=8, description="residual width; a multiple of 2 * n_head")
    rope_base: float = Field(10000.0, gt=0, description="RoPE frequency base")
    position_encoding: Literal["rope", "none"] = Field(
        "rope", description="rope, or none (NoPE: causal attention infers order; extends to longer inputs better)"
    )
    norm_eps: float = Field(1e-5, gt=0, description="RMSNorm epsilon")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def hidden_dim(self) -> int:
        # SwiGLU width: 8/3 d rounded up to a multiple of 16, as in LLaMA
        return 16 * math.ceil(8 * self.d_model / 3 / 16)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(positions: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin for integer `positions` (B, T), each (B, 1, T, head_dim)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim))
    angles = positions.float().unsqueeze(-1) * inv_freq  # (B, T, hd/2)
    angles = torch.cat([angles, angles], dim=-1).unsqueeze(1)  # (B, 1, T, hd)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def attention_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Plain masked softmax attention; the SDPA path is tested against it."""
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B, nh, T, S)
    scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1) @ v  # (B, nh, T, hd)


class Attention(nn.Module):
    def __init__(self, config: TinyLMConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.head_dim = config.head_dim
        self.qkv = nn.Linear(config.d_model, 3 * config.n_head * config.head_dim, bias=False)
        self.proj = nn.Linear(config.n_head * config.head_dim, config.d_model, bias=False)
        self.use_sdpa = True

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor | None,
        sin: torch.Tensor | None,
        mask: torch.Tensor,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        start: int = 0,
    ) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = (
            self.qkv(x).view(B, T, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)
        )  # 3 x (B, nh, T, hd)
        if cos is not None:  # None: no position encoding (NoPE)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            # write this step's keys/values into the preallocated buffers, attend over everything so far
            cache[0][:, :, start : start + T] = k
            cache[1][:, :, start : start + T] = v
            k, v = cache[0][:, :, : start + T], cache[1][:, :, : start + T]  # (B, nh, S, hd)
        if self.use_sdpa:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            y = attention_reference(q, k, v, mask)
        return self.proj(y.transpose(1, 2).reshape(B, T, -1))


class SwiGLU(nn.Module):
    def __init__(self, config: TinyLMConfig) -> None:
        super().__init__()
        self.gate = nn.Linear(config.d_model, config.hidden_dim, bias=False)
        self.up = nn.Linear(config.d_model, config.hidden_dim, bias=False)
        self.down = nn.Linear(config.hidden_dim, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, config: TinyLMConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attn = Attention(config)
        self.mlp_norm = RMSNorm(config.d_model, config.norm_eps)
        self.mlp = SwiGLU(config)

    def forward(self, x, cos, sin, mask, cache=None, start=0):
        x = x + self.attn(self.attn_norm(x), cos, sin, mask, cache, start)
        return x + self.mlp(self.mlp_norm(x))


class TinyTransformer(nn.Module):
    """Decoder-only transformer: token embedding, n_layer blocks, final norm, tied output head."""

    def __init__(self, config: TinyLMConfig) -> None:
        super().__init__()
        if config.d_model % (2 * config.n_head):
            raise UserError(
                f"tinylm d_model={config.d_model} must be a multiple of 2 * n_head={2 * config.n_head}"
            )
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.apply(self._init_weights)
        for name, param in self.named_parameters():
            # GPT-2 style: shrink the residual projections by depth
            if name.endswith(("proj.weight", "down.weight")):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        elif isinstance(module, nn.Embedding):
            # the tied head needs unit-scale logits from the start: with std 0.02 a small model spends its
            # first hundreds of steps only growing the logit scale, and RL cannot sharpen the policy
            nn.init.normal_(module.weight, mean=0.0, std=self.config.d_model**-0.5)

    def forward(
        self,
        idx: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor,
        cache: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
        start: int = 0,
    ) -> torch.Tensor:
        """Logits (B, T, V) for tokens `idx` (B, T) at `positions` (B, T); `mask` (B, 1, T, S) says who sees whom."""
        cos, sin = (None, None) if self.config.position_encoding == "none" else rope_tables(
            positions, self.config.head_dim, self.config.rope_base)
        x = self.embed(idx)  # (B, T, d)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, mask, None if cache is None else cache[i], start)
        return self.norm(x) @ self.embed.weight.T  # (B, T, V)

    def forward_padded(self, idx: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits for right-padded rows `idx` (B, T) whose first `lengths` (B,) tokens are real."""
        B, T = idx.shape
        positions = torch.arange(T, device=idx.device).expand(B, T)
        valid = positions < lengths.unsqueeze(1)  # (B, T)
        causal = torch.ones(T, T, dtype=torch.bool, device=idx.device).tril()
        mask = causal & valid[:, None, None, :]  # (B, 1, T, T); position 0 is always valid
        return self(idx, positions, mask)


def _sample(
    logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next tokens (B,) and their logprobs (B,) under logits / temperature (raw logits when greedy)."""
    if params.temperature == 0:
        logprobs = logits.log_softmax(-1)
        tokens = logits.argmax(-1)
        return tokens, logprobs.gather(-1, tokens[:, None]).squeeze(-1)
    logprobs = (logits / params.temperature).log_softmax(-1)  # (B, V)
    probs = logprobs.exp()
    if params.top_p < 1.0:
        # nucleus: keep the smallest prefix of sorted tokens whose mass reaches top_p
        sorted_probs, order = probs.sort(-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs > params.top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return tokens, logprobs.gather(-1, tokens[:, None]).squeeze(-1)


class TinyLM(BaseLLM):
    """A `TinyTransformer` plus `Tokenizer` that implements `TrainablePolicy` (generate, logprobs, reference, save)."""

    def __init__(self, model: TinyTransformer, tokenizer: Tokenizer, name: str = "tinylm") -> None:
        super().__init__()
        if model.config.vocab_size < len(tokenizer):
            raise UserError(
                f"tinylm vocab_size={model.config.vocab_size} is smaller than the tokenizer ({len(tokenizer)}): "
                "set TinyLMConfig.vocab_size=len(tokenizer)"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.name = name

    @classmethod
    def create(cls, config: TinyLMConfig, tokenizer: Tokenizer, seed: int = 0) -> TinyLM:
        """A freshly initialised tinylm; the same seed gives the same weights."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = TinyTransformer(config)
        return cls(model, tokenizer)

    @classmethod
    def load(cls, path: str | Path) -> TinyLM:
        """Load a directory written by `save` (config.json, tokenizer.json, model.pt)."""
        path = Path(path)
        if not (path / "model.pt").is_file():
            raise UserError(
                f"{path} is not a tinylm checkpoint (no model.pt): pass a folder written by TinyLM.save"
            )
        config = TinyLMConfig.model_validate_json((path / "config.json").read_text())
        tokenizer = Tokenizer.from_dict(json.loads((path / "tokenizer.json").read_text()))
        model = TinyTransformer(config)
        model.load_state_dict(torch.load(path / "model.pt", map_location="cpu", weights_only=True))
        return cls(model, tokenizer, name=f"tinylm:{path}")

    def save(self, path: str, half: bool = False) -> None:
        """Write config.json, tokenizer.json and model.pt; `half` stores float weights as float16 (half the
        bytes, for checkpoints shipped in the package; `load` reads them back into float32)."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "config.json", self.model.config.model_dump())
        atomic_write_json(out / "tokenizer.json", self.tokenizer.to_dict())
        state = self.model.state_dict()
        if half:
            state = {name: tensor.half() if tensor.is_floating_point() else tensor for name, tensor in state.items()}
        with atomic_write(out / "model.pt", "wb") as handle:
            torch.save(state, handle)

    # TrainablePolicy properties

    @property
    def module(self) -> TinyTransformer:
        return self.model

    @property
    def eos_token_id(self) -> int:
        return self.tokenizer.eos_id

    @property
    def pad_token_id(self) -> int:
        return self.tokenizer.pad_id

    @property
    def context_length(self) -> int:
        return self.model.config.context_length

    @property
    def device(self) -> torch.device:
        return self.model.embed.weight.device

    def tokenize(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text`; a tinylm adds no special tokens (prompts start wherever the task says)."""
        return self.tokenizer.encode(text)

    def detokenize(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(token_ids)

    def reference(self) -> TinyLM:
        """A frozen copy of the current weights (for KL terms)."""
        frozen = TinyLM(copy.deepcopy(self.model), self.tokenizer, name=f"{self.name}:reference")
        frozen.model.requires_grad_(False).eval()
        return frozen

    def logprobs(
        self,
        prompt_ids: Sequence[Sequence[int]],
        completion_ids: Sequence[Sequence[int]],
        temperature: float = 1.0,
    ) -> list[torch.Tensor]:
        """Differentiable logprobs of each completion token given its prompt, at `temperature` (0 means 1)."""
        if len(prompt_ids) != len(completion_ids):
            raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
        rows = [list(p) + list(c) for p, c in zip(prompt_ids, completion_ids, strict=True)]
        lengths = torch.tensor([len(r) for r in rows], device=self.device)
        T = int(lengths.max())
        idx = torch.tensor(
            [r + [self.pad_token_id] * (T - len(r)) for r in rows], device=self.device
        )  # (B, T)
        logits = self.model.forward_padded(idx, lengths)  # (B, T, V)
        # the logit at position j predicts token j + 1: gather the completion's predicting positions
        C = max((len(c) for c in completion_ids), default=0)
        starts = torch.tensor([len(p) - 1 for p in prompt_ids], device=self.device)
        where = (starts[:, None] + torch.arange(C, device=self.device)).clamp(max=T - 1)  # (B, C)
        picked = logits.gather(1, where[..., None].expand(-1, -1, logits.shape[-1]))  # (B, C, V)
        scale = 1.0 if temperature == 0 else temperature
        targets = idx.gather(1, (where + 1).clamp(max=T - 1))  # (B, C)
        token_logprobs = (picked.float() / scale).log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)
        return [token_logprobs[i, : len(c)] for i, c in enumerate(completion_ids)]

    @torch.no_grad()
    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        """`params.n` completions per prompt, all rows in one batch with a KV cache."""
        if params.constrained:
            raise UserError(
                "tinylm has no constrained decoding: drop json_schema/grammar/regex or use an hf: model"
            )
        started = time.perf_counter()
        prompt_rows = [self.prompt_ids(p) for p in prompts]
        rows = [ids for ids in prompt_rows for _ in range(params.n)]
        if any(len(r) == 0 for r in rows):
            raise UserError("tinylm got an empty prompt: give at least one token")
        outputs = self._generate_rows(rows, params)
        finished = time.perf_counter()
        generations: list[list[Generation]] = []
        for i, prompt in enumerate(prompt_rows):
            group = []
            for tokens, logprobs, reason in outputs[i * params.n : (i + 1) * params.n]:
                text = self.tokenizer.decode(tokens)
                if reason == "stop":
                    text, _ = truncate_at_stop(text, params.stop)
                group.append(
                    Generation(
                        text=text,
                        token_ids=tokens,
                        logprobs=logprobs if params.logprobs else None,
                        finish_reason=reason,
                        prompt_tokens=len(prompt),
                        completion_tokens=len(tokens),
                        latency_s=finished - started,
                    )
                )
            generations.append(group)
        self._record(generations, started)
        return generations

    def _generate_rows(
        self, rows: list[list[int]], params: SamplingParams
    ) -> list[tuple[list[int], list[float], Literal["stop", "length", "eos"]]]:
        """Sample every row to EOS, a stop string or max_tokens; token ids include the EOS token."""
        model, device = self.model, self.device
        was_training = model.training
        model.eval()
        generator = None
        if params.seed is not None:
            generator = torch.Generator(device=device).manual_seed(params.seed)
        B, P = len(rows), max(len(r) for r in rows)
        cfg = model.config
        # left-pad the prompts; each row's positions start at 0 on its first real token
        idx = torch.tensor([[self.pad_token_id] * (P - len(r)) + r for r in rows], device=device)  # (B, P)
        valid = idx.new_zeros(B, P + params.max_tokens, dtype=torch.bool)  # (B, S) keys that are real tokens
        valid[:, :P] = (
            torch.arange(P, device=device) >= torch.tensor([P - len(r) for r in rows], device=device)[:, None]
        )
        positions = (valid[:, :P].long().cumsum(-1) - 1).clamp(min=0)  # (B, P)
        causal = torch.ones(P, P, dtype=torch.bool, device=device).tril()
        # pad queries see themselves so that no softmax row is empty
        mask = (causal & valid[:, None, None, :P]) | torch.eye(P, dtype=torch.bool, device=device)
        shape = (B, cfg.n_head, P + params.max_tokens, cfg.head_dim)
        cache = [
            (torch.empty(shape, device=device), torch.empty(shape, device=device)) for _ in range(cfg.n_layer)
        ]
        logits = model(idx, positions, mask, cache, start=0)[:, -1].float()  # (B, V)
        next_position = positions[:, -1] + 1  # (B,)

        tokens: list[list[int]] = [[] for _ in range(B)]
        logprobs: list[list[float]] = [[] for _ in range(B)]
        reasons: list[Literal["stop", "length", "eos"]] = ["length"] * B
        active = list(range(B))  # batch row i of the tensors is original row active[i]
        for step in range(params.max_tokens):
            token, token_logprob = _sample(logits, params, generator)
            keep = []
            for i, row in enumerate(active):
                tokens[row].append(int(token[i]))
                logprobs[row].append(float(token_logprob[i]))
                if tokens[row][-1] == self.eos_token_id:
                    reasons[row] = "eos"
                elif params.stop and truncate_at_stop(self.tokenizer.decode(tokens[row]), params.stop)[1]:
                    reasons[row] = "stop"
                else:
                    keep.append(i)
            if not keep or step == params.max_tokens - 1:
                break
            if len(keep) < len(active):
                # finished rows leave the batch: shrink every per-row tensor and the cache
                sel = torch.tensor(keep, device=device)
                token, valid, next_position = token[sel], valid[sel], next_position[sel]
                cache = [(k[sel], v[sel]) for k, v in cache]
                active = [active[i] for i in keep]
            S = P + step + 1
            valid[:, S - 1] = True
            logits = model(
                token[:, None], next_position[:, None], valid[:, None, None, :S], cache, start=S - 1
            )
            logits = logits[:, -1].float()
            next_position = next_position + 1
        model.train(was_training)
        return [(tokens[r], logprobs[r], reasons[r]) for r in range(B)]
