"""AHN on a real decoder and real documents: the wrapped model, the token windows of documents, scoring and
generation of a distilled run (`reasonlab ahn eval | generate`; `training.train` is `reasonlab ahn distill`).

`load_wrapped` wraps an `hf:` model with one memory per full-attention layer (all layers of Llama/Qwen, the global
layers of Gemma-3); `prepare_windows` cuts training and held-out documents into BOS-led windows; `evaluate_run`
scores held-out windows beyond the window (full attention, sinks + SWA, AHN) with a distilled run's memories.

    run_dir = train(DOCUMENT_PRESETS["quick"])         # wraps hf:embedded, trains, evaluates, saves ahn.pt
    scores = evaluate_run(run_dir, window=60)          # perplexity beyond the window, three ways
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from reasonlab.errors import UserError
from reasonlab.runs import Run, atomic_write_json
from reasonlab.systems.ahn.config import DocumentsConfig
from reasonlab.systems.ahn.evaluation import scores_between, window_scores
from reasonlab.tasks.documents import Document, clean_rst, load_documents, split_documents, token_windows

__all__ = ["evaluate_run", "generate_from_run", "load_run", "load_wrapped", "prepare_windows"]

AHN_FILE = "ahn.pt"


def load_wrapped(config: DocumentsConfig) -> tuple[Any, Any]:
    """(policy, wrapped): the LLM from `reasonlab.llm` and its model wrapped in place with AHN memories."""
    from reasonlab.llm import load_llm
    from reasonlab.systems.ahn.hf import wrap_hf

    if not config.model.startswith("hf:"):
        raise UserError(f"--model {config.model}: AHN wraps a transformers model; pass hf:embedded or hf:PATH")
    policy = load_llm(config.model)
    context = int(getattr(policy.module.config, "max_position_embeddings", 0) or 0)
    if context and config.seq_len > context:
        raise UserError(f"seq_len {config.seq_len} exceeds {config.model}'s context of {context} tokens: lower it")
    torch.manual_seed(config.seed)  # the memories' initialisation
    wrapped = wrap_hf(policy.module, kind=config.kind, sinks=config.sinks, window=config.window,
                      chunk_size=config.chunk_size)
    return policy, wrapped


def _device(wrapped: Any) -> torch.device:
    return next(wrapped.memories.parameters()).device


def _documents(config: DocumentsConfig) -> list[Document]:
    documents = load_documents(config.documents, pattern=config.pattern, min_chars=config.min_chars)
    return [Document(d.name, clean_rst(d.text)) if d.name.endswith(".rst.txt") else d for d in documents]


def _windows(policy: Any, text: str, length: int) -> list[list[int]]:
    """Windows of exactly `length` tokens; each starts with the tokenizer's BOS when it has one (a window cut from
    the middle of a document then looks like a document's start, as the model was trained to see)."""
    ids = policy.tokenize(text, add_special_tokens=False)
    bos = getattr(getattr(policy, "tokenizer", None), "bos_token_id", None)
    if bos is None:
        return token_windows(ids, length)
    return [[bos, *window] for window in token_windows(ids, length - 1)]


def prepare_windows(config: DocumentsConfig, policy: Any) -> dict[str, Any]:
    """Token windows of `seq_len` from the training documents (shuffled by the seed) and from the held-out ones
    (the first `eval_windows`, taken round-robin over documents so no single document dominates)."""
    documents = _documents(config)
    if len(documents) < 2:
        raise UserError(f"{config.documents} gives {len(documents)} document(s) of at least {config.min_chars} "
                        "characters: training and held-out text must come from different documents; pass a folder "
                        "of several, or lower min_chars")
    train_docs, held_docs = split_documents(documents, held_out=config.held_out, seed=config.seed)
    train = [w for d in train_docs for w in _windows(policy, d.text, config.seq_len)]
    random.Random(config.seed).shuffle(train)
    if config.train_windows is not None:
        train = train[:config.train_windows]
    per_doc = [_windows(policy, d.text, config.seq_len) for d in held_docs]
    held: list[list[int]] = []
    for depth in range(max((len(w) for w in per_doc), default=0)):
        held.extend(windows[depth] for windows in per_doc if depth < len(windows))
    held = held[:config.eval_windows]
    if not train or not held:
        raise UserError(f"{config.documents} gives {len(train)} training and {len(held)} held-out windows of "
                        f"{config.seq_len} tokens: lower seq_len or min_chars, or add longer documents")
    return {"train": train, "held_out": held, "train_documents": [d.name for d in train_docs],
            "held_out_documents": [d.name for d in held_docs]}


def evaluate_run(run_dir: str | Path, window: int | None = None, eval_windows: int | None = None) -> dict:
    """Score a distill run's held-out windows again (optionally at another window or with more windows)."""
    config, policy, wrapped = load_run(run_dir)
    updates = {k: v for k, v in {"window": window, "eval_windows": eval_windows}.items() if v is not None}
    config = DocumentsConfig.model_validate({**config.model_dump(), **updates, "resume": False})
    windows = prepare_windows(config, policy)
    scores = window_scores(wrapped, windows["held_out"], config.sinks, config.window)
    scores["between"] = scores_between(scores)
    atomic_write_json(Path(run_dir) / f"eval-window{config.window}-n{len(windows['held_out'])}.json", scores)
    return scores


def load_run(run_dir: str | Path) -> tuple[DocumentsConfig, Any, Any]:
    """(config, policy, wrapped) of a distill run, its memories loaded."""
    from reasonlab.systems.ahn.hf import load_hf_ahn

    run = Run.open(run_dir)
    saved = run.settings()
    try:
        config = DocumentsConfig.model_validate(saved)
    except ValueError as error:
        raise UserError(f"{run.config_path} is not a distill run's config ({type(error).__name__}): pass a run "
                        "made by `reasonlab ahn distill`") from None
    if not (run.dir / AHN_FILE).is_file():
        raise UserError(f"{run.dir} has no {AHN_FILE}: its distillation did not finish; run distill with --resume")
    policy, wrapped = load_wrapped(config.model_copy(update={"resume": False}))
    load_hf_ahn(wrapped, run.dir / AHN_FILE)
    return config, policy, wrapped.eval()


@torch.no_grad()
def generate_from_run(run_dir: str | Path, prompt: str, max_tokens: int, use_memory: bool = True) -> dict[str, Any]:
    """Greedy continuation of `prompt` with the constant-size decode cache (AHN, or sinks + SWA)."""
    _, policy, wrapped = load_run(run_dir)
    device = _device(wrapped)
    ids = torch.tensor([policy.tokenize(prompt)], device=device)
    output = wrapped(ids, use_cache=True, use_memory=use_memory, logits_to_keep=1)
    vocabulary = policy.vocab_size  # an output layer may be padded past the tokenizer: never pick those ids
    cache, new = output.cache, [int(output.logits[0, -1, :vocabulary].argmax())]
    while len(new) < max_tokens and new[-1] != policy.eos_token_id:
        output = wrapped(torch.tensor([[new[-1]]], device=device), cache=cache, use_cache=True,
                         use_memory=use_memory)
        new.append(int(output.logits[0, -1, :vocabulary].argmax()))
    return {"text": policy.detokenize(new), "prompt_tokens": ids.shape[1], "new_tokens": len(new),
            "cache_bytes": cache.nbytes()}
