"""AHN on a real decoder and real documents (experiment b, and `reasonlab ahn distill | eval | generate`).

`distill(config)` wraps an `hf:` model with one memory per full-attention layer (all layers of Llama/Qwen, the
global layers of Gemma-3), self-distills it on windows of long documents (forward KL at positions >= T against
the unchanged model) and scores held-out windows beyond the window: full attention, sinks + SWA, and AHN.

    run_dir = distill(DOCUMENT_PRESETS["quick"])       # wraps hf:embedded, trains, evaluates, saves ahn.pt
    scores = evaluate_run(run_dir)                     # perplexity beyond the window, three ways
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import torch

from reasonlab import progress
from reasonlab.demo import Headline, write_headline
from reasonlab.errors import UserError
from reasonlab.runs import Run, atomic_write_json
from reasonlab.systems.ahn.config import DocumentsConfig
from reasonlab.systems.ahn.distillation import BudgetSampler
from reasonlab.tasks.documents import Document, clean_rst, load_documents, split_documents, token_windows
from reasonlab.train.distill import forward_kl, has_distill_checkpoint, train_distill

__all__ = [
    "distill",
    "evaluate_run",
    "generate_from_run",
    "load_run",
    "load_wrapped",
    "prepare_windows",
    "window_scores",
]

AHN_FILE = "ahn.pt"
WINDOWS_FILE = "windows.json"


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


def prepare_windows(config: DocumentsConfig, policy: Any) -> dict[str, Any]:
    """Token windows of `seq_len` from the training documents (shuffled by the seed) and from the held-out ones
    (the first `eval_windows`, taken round-robin over documents so no single document dominates)."""
    train_docs, held_docs = split_documents(_documents(config), held_out=config.held_out, seed=config.seed)
    train = [w for d in train_docs for w in token_windows(policy.tokenize(d.text), config.seq_len)]
    random.Random(config.seed).shuffle(train)
    if config.train_windows is not None:
        train = train[:config.train_windows]
    per_doc = [token_windows(policy.tokenize(d.text), config.seq_len) for d in held_docs]
    held: list[list[int]] = []
    for depth in range(max((len(w) for w in per_doc), default=0)):
        held.extend(windows[depth] for windows in per_doc if depth < len(windows))
    held = held[:config.eval_windows]
    if not train or not held:
        raise UserError(f"{config.documents} gives {len(train)} training and {len(held)} held-out windows of "
                        f"{config.seq_len} tokens: lower seq_len or min_chars, or add longer documents")
    return {"train": train, "held_out": held, "train_documents": [d.name for d in train_docs],
            "held_out_documents": [d.name for d in held_docs]}


@torch.no_grad()
def window_scores(wrapped: Any, windows: list[list[int]], sinks: int, window: int) -> dict[str, dict[str, float]]:
    """Perplexity of next-token predictions at positions >= T = sinks + window, pooled over the windows, for full
    attention (the teacher), sinks + SWA and AHN."""
    wrapped.set_budget(sinks, window)
    budget = sinks + window
    nll = {"full": 0.0, "swa": 0.0, "ahn": 0.0}
    count = 0
    device = _device(wrapped)
    for tokens in windows:
        ids = torch.tensor([tokens], device=device)
        targets = ids[0, budget + 1:]
        keep = len(tokens) - budget  # logits at positions budget .. L-1; the last predicts nothing here
        outputs = {"full": wrapped(ids, full_attention=True, logits_to_keep=keep).logits,
                   "swa": wrapped(ids, use_memory=False, logits_to_keep=keep).logits,
                   "ahn": wrapped(ids, logits_to_keep=keep).logits}
        for name, logits in outputs.items():
            logp = logits[0, :-1].float().log_softmax(-1).gather(-1, targets[:, None])
            nll[name] -= float(logp.sum())
        count += targets.numel()
    return {name: {"perplexity": float(torch.tensor(value / count).exp()), "nll": value / count, "tokens": count}
            for name, value in nll.items()}


def _batch_loss(config: DocumentsConfig, wrapped: Any, train: list[list[int]]):
    sampler = BudgetSampler(tuple(config.budgets), tuple(config.sink_choices), min_share=1 / 8)  # the paper's

    def batch_loss(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        rows = [train[(step * config.batch_size + i) % len(train)] for i in range(config.batch_size)]
        ids = torch.tensor(rows, device=_device(wrapped))
        sinks, window = sampler.draw(random.Random(config.seed * 1_000_003 + step), config.seq_len)
        wrapped.set_budget(sinks, window)
        keep = config.seq_len - (sinks + window)  # only positions >= T carry the loss
        with torch.no_grad():
            teacher = wrapped(ids, full_attention=True, logits_to_keep=keep).logits
        student = wrapped(ids, logits_to_keep=keep).logits
        loss = forward_kl(teacher, student, torch.ones(teacher.shape[:2], dtype=torch.bool, device=ids.device))
        return loss, {"budget": float(sinks + window)}

    return batch_loss


def distill(config: DocumentsConfig) -> Path:
    """Wrap, score before training, self-distill, score again; returns the run directory (ahn.pt, summary)."""
    name = config.name or f"ahn-{config.kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    if config.resume:
        Run.require_existing(Path(config.out) / name)
    run = Run.create(config.out, name, config, resume=config.resume, overwrite=config.overwrite,
                     ignore=("resume", "overwrite"))
    with progress.phase(f"loading {config.model} and wrapping it with {config.kind} memories"):
        policy, wrapped = load_wrapped(config)
    with progress.phase(f"tokenising {config.documents}"):
        windows = prepare_windows(config, policy)
    atomic_write_json(run.dir / WINDOWS_FILE, {k: v for k, v in windows.items() if k.endswith("documents")})
    progress.say(f"{len(windows['train'])} training and {len(windows['held_out'])} held-out windows of "
                 f"{config.seq_len} tokens; memories on layers {wrapped.layer_indices}")
    before_path = run.dir / "before.json"
    if before_path.is_file():
        import json

        before = json.loads(before_path.read_text())
    else:
        with progress.phase("scoring held-out windows before training"):
            before = window_scores(wrapped, windows["held_out"], config.sinks, config.window)
        atomic_write_json(before_path, before)
    resume = config.resume and has_distill_checkpoint(run)
    wrapped.train()
    with progress.heartbeat("ahn distill"):
        history = train_distill(config.distill.model_copy(update={"resume": resume}), wrapped,
                                _batch_loss(config, wrapped, windows["train"]), run)
    wrapped.eval()
    from reasonlab.systems.ahn.hf import save_hf_ahn

    save_hf_ahn(wrapped, run.dir / AHN_FILE)
    with progress.phase("scoring held-out windows after training"):
        after = window_scores(wrapped, windows["held_out"], config.sinks, config.window)
    summary = {"model": config.model, "kind": config.kind, "layers": list(wrapped.layer_indices),
               "budget": config.sinks + config.window, "seq_len": config.seq_len,
               "documents": config.documents, "train_windows": len(windows["train"]),
               "eval_windows": len(windows["held_out"]), "steps": config.distill.steps,
               "final_kl": history[-1]["loss"] if history else None, "before": before, "after": after,
               "between": after["full"]["perplexity"] <= after["ahn"]["perplexity"] <= after["swa"]["perplexity"]}
    run.write_summary(summary)
    write_headline(run.dir, documents_headline(summary))
    return run.dir


def evaluate_run(run_dir: str | Path, window: int | None = None, eval_windows: int | None = None) -> dict:
    """Score a distill run's held-out windows again (optionally at another window or with more windows)."""
    config, policy, wrapped = load_run(run_dir)
    updates = {k: v for k, v in {"window": window, "eval_windows": eval_windows}.items() if v is not None}
    config = DocumentsConfig.model_validate({**config.model_dump(), **updates, "resume": False})
    windows = prepare_windows(config, policy)
    scores = window_scores(wrapped, windows["held_out"], config.sinks, config.window)
    atomic_write_json(Path(run_dir) / f"eval-window{config.window}-n{len(windows['held_out'])}.json", scores)
    return scores


def documents_headline(summary: dict[str, Any]) -> Headline:
    after = summary["after"]
    result = (f"perplexity at positions >= T={summary['budget']} on {summary['eval_windows']} held-out windows of "
              f"{summary['seq_len']} tokens ({after['ahn']['tokens']} tokens): full attention "
              f"{after['full']['perplexity']:.2f}, AHN-{summary['kind']} {after['ahn']['perplexity']:.2f}, "
              f"sinks+SWA {after['swa']['perplexity']:.2f} (before training AHN = SWA "
              f"{summary['before']['ahn']['perplexity']:.2f}); {summary['steps']} distillation steps")
    return Headline(system="ahn", measures=f"{summary['model']} with AHN memories on layers {summary['layers']}, "
                    f"distilled on {summary['documents']}", result=result,
                    paper="AHN recovers long-context quality lost by sliding-window attention, below full attention",
                    holds=summary["between"], kind="result")


def load_run(run_dir: str | Path) -> tuple[DocumentsConfig, Any, Any]:
    """(config, policy, wrapped) of a distill run, its memories loaded."""
    from reasonlab.systems.ahn.hf import load_hf_ahn

    run = Run.open(run_dir)
    saved = {key: value for key, value in run.config().items() if not key.startswith("_")}
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
    cache, new = output.cache, [int(output.logits[0, -1].argmax())]
    while len(new) < max_tokens and new[-1] != policy.eos_token_id:
        output = wrapped(torch.tensor([[new[-1]]], device=device), cache=cache, use_cache=True,
                         use_memory=use_memory)
        new.append(int(output.logits[0, -1].argmax()))
    return {"text": policy.detokenize(new), "prompt_tokens": ids.shape[1], "new_tokens": len(new),
            "cache_bytes": cache.nbytes()}
