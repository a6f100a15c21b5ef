"""Offline and online adaptation of a context (ACE playbook or a baseline memory), and evaluation.

    reasonlab ace adapt --llm llamacpp:embedded --task formula --mode offline --out runs/ace
    reasonlab ace adapt --llm llamacpp:embedded --task tools --mode online --no-labels --out runs/ace

Offline: epochs over the training split; every `eval_steps` steps the validation split is scored and the
best context so far is kept (ties keep the earlier one); the test split is scored with the best.
Online: the test stream in windows of `window` samples; each window is scored with the current context
first, then the context learns from it sample by sample (the scored answer is the first attempt).
With `labels=False` the feedback is the task's execution signal only; the gold label is read only to
report accuracy, never during adaptation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.llm import LLM
from reasonlab.progress import eta, say
from reasonlab.runs import Run, atomic_write_json, atomic_write_text
from reasonlab.systems.ace.config import ACEConfig
from reasonlab.systems.ace.evaluation import Scorer, collapse_stats, evaluate
from reasonlab.systems.ace.memory import (
    Attempt,
    ExamplesMemory,
    FeedbackFn,
    Memory,
    NoMemory,
    OracleReflector,
    PlaybookMemory,
    RewriteMemory,
    answer,
    fact_retained,
)
from reasonlab.systems.ace.playbook import Playbook
from reasonlab.systems.ace.roles import Curator, Generator, Reflector
from reasonlab.systems.ace.tasks import Sample, Task, load_task

__all__ = ["adapt", "build_memory", "feedback_fn", "run_adaptation"]


def feedback_fn(task: Task, labels: bool) -> FeedbackFn:
    """Label feedback, or the task's execution signal only."""
    return task.label_feedback if labels else task.execute


def build_memory(config: ACEConfig, llm: LLM, task: Task, embedder: Any = None) -> Memory:
    """The context named by `config.method`, seeded with the task's reference facts if asked."""
    count = _counter(llm)
    facts = task.seed_facts() if config.seed_facts else []
    if config.method == "none":
        return NoMemory()
    if config.method == "icl":
        return ExamplesMemory(count, k=config.icl_examples, labels=config.labels)
    if config.method == "dc":
        insight = (lambda s: task.rule(s.family) or "") if config.oracle_reflector else None
        return RewriteMemory(llm, config.roles, count, task.demo, config.rewrite_chars, insight,
                             cheatsheet="\n".join(f"- {f}" for f in facts))
    playbook = Playbook.load(config.playbook) if config.playbook else Playbook()
    for fact in facts:
        playbook.add("others", fact)
    reflector = OracleReflector(task) if config.oracle_reflector else Reflector(llm, config.roles, task.demo)
    return PlaybookMemory(
        generator=Generator(llm, config.roles, task.demo, task.instructions), reflector=reflector,
        curator=Curator(llm, config.roles, task.demo), task=task, feedback=feedback_fn(task, config.labels),
        count=count, budget=config.token_budget, prune=config.prune, rounds=config.reflector_rounds,
        curator_frequency=config.curator_frequency, embedder=embedder, dedup_threshold=config.dedup_threshold,
        dedup_within_section=config.dedup_within_section, playbook=playbook)


def _counter(llm: LLM) -> Callable[[str], int]:
    """Token counts with the model's own tokenizer."""
    return lambda text: len(llm.tokenize(text))


class _Progress:
    """Per-step metrics, memory size and cost; logs to the run, keeps the token curve and, with a `label`,
    prints one progress line per update (context size before and after, seeded rules kept, ETA)."""

    def __init__(self, run: Run | None, llm: LLM, memory: Memory, facts: list[str], label: str | None = None):
        self.run, self.llm, self.memory, self.facts, self.label = run, llm, memory, facts, label
        self.tokens = [memory.tokens()]
        self.retained = [self.retention()]
        self.started = time.monotonic()
        self.seconds = 0.0

    def restart(self) -> None:
        """Start the adaptation's clock (after the evaluation before adapting)."""
        self.started = time.monotonic()

    def retention(self) -> int:
        text = self.memory.context()
        return sum(fact_retained(f, text) for f in self.facts)

    def step(self, step: int, sample: Sample, first: Attempt, record: dict[str, Any]) -> None:
        self.tokens.append(self.memory.tokens())
        self.retained.append(self.retention())
        metrics = {"sample": sample.id, "first_correct": first.feedback.correct, "context_tokens": self.tokens[-1],
                   "facts_retained": self.retained[-1], **record, **self.llm.usage.as_dict()}
        if self.run is not None:
            self.run.log(metrics, step=step)
            _save_memory(self.run, self.memory)

    def announce(self, step: int, total: int) -> None:
        if self.label:
            kept = f", seeded rules kept {self.retained[-1]}/{len(self.facts)}" if self.facts else ""
            say(f"{self.label}: update {step}/{total}, context {self.tokens[-2]} -> {self.tokens[-1]} tokens{kept}, "
                f"{eta(step, total, self.started)}")


def _save_memory(run: Run, memory: Memory) -> None:
    if isinstance(memory, PlaybookMemory):
        memory.playbook.save(run.dir / "playbook.json")
    else:
        atomic_write_text(run.dir / f"{memory.name}_context.txt", memory.context())


def adapt(config: ACEConfig, llm: LLM, task: Task, memory: Memory, run: Run | None = None,
          scorer: Scorer | None = None, label: str | None = None) -> dict[str, Any]:
    """Adapt `memory` on `task` (offline or online) and return the summary; the run (if any) gets the logs.
    With `label`, a progress line per update and per scored question."""
    generator = Generator(llm, config.roles, task.demo, task.instructions)
    feedback = feedback_fn(task, config.labels)
    facts = task.seed_facts() if config.seed_facts else []
    progress = _Progress(run, llm, memory, facts, label)
    if config.mode == "online":
        summary = _online(config, generator, memory, task, feedback, progress, scorer)
    else:
        summary = _offline(config, generator, memory, task, feedback, progress, scorer)
    summary.update({
        "method": memory.name, "mode": config.mode, "labels": config.labels, "task": task.name,
        "context_tokens": progress.tokens, "facts_seeded": len(facts), "facts_retained": progress.retained,
        **collapse_stats(progress.tokens), "usage": llm.usage.as_dict(),
        "adapt_seconds": round(progress.seconds, 2),
        "failures": len(getattr(memory, "failures", [])),
        "role_stats": {"evaluation_generator": generator.stats, **_role_stats(memory)},
    })
    return summary


def _role_stats(memory: Memory) -> dict[str, dict[str, int]]:
    """Calls, LLM tries (retries included) and failures of each role of the memory."""
    if isinstance(memory, PlaybookMemory):
        roles = {"generator": memory.generator, "reflector": memory.reflector, "curator": memory.curator}
        return {name: dict(getattr(role, "stats", {})) for name, role in roles.items()}
    if isinstance(memory, RewriteMemory):
        return {"rewrite": dict(memory.stats)}
    return {}


def _learn(memory: Memory, generator: Generator, task: Task, sample: Sample, feedback: FeedbackFn,
           step: int, total: int, progress: _Progress, first: Attempt | None = None) -> Attempt:
    first = first or answer(generator, memory, task, sample, feedback)
    record = memory.learn(sample, first, step, total)
    progress.step(step, sample, first, record)
    progress.announce(step, total)
    return first


def _offline(config: ACEConfig, generator: Generator, memory: Memory, task: Task, feedback: FeedbackFn,
             progress: _Progress, scorer: Scorer | None) -> dict[str, Any]:
    train, val, test = _splits(config, task)
    label = progress.label
    before = (evaluate(generator, memory, task, test, scorer, _sub(label, "test before adapting"))
              if config.eval_before else None)
    progress.restart()
    usage_start = dict(progress.llm.usage.as_dict())
    best_state, best_score, best_step = memory.snapshot(), -1.0, 0
    val_curve = []
    if val:
        best_score = evaluate(generator, memory, task, val, scorer, _sub(label, "validation"))["accuracy"]
        val_curve.append((0, best_score))
    total, step = config.epochs * len(train), 0
    for _ in range(config.epochs):
        for sample in train:
            step += 1
            _learn(memory, generator, task, sample, feedback, step, total, progress)
            if val and (step % config.eval_steps == 0 or step == total):
                score = evaluate(generator, memory, task, val, scorer, _sub(label, "validation"))["accuracy"]
                val_curve.append((step, score))
                if score > best_score:
                    best_state, best_score, best_step = memory.snapshot(), score, step
    progress.seconds = time.monotonic() - progress.started
    adapt_usage = _usage_delta(usage_start, progress.llm.usage.as_dict())
    if val:
        memory.restore(best_state)
    after = evaluate(generator, memory, task, test, scorer, _sub(label, "test"))
    return {"test_before": _brief(before), "test_after": _brief(after), "val_curve": val_curve,
            "best_step": best_step, "adapt_usage": adapt_usage, "test_rows": after["rows"]}


def _online(config: ACEConfig, generator: Generator, memory: Memory, task: Task, feedback: FeedbackFn,
            progress: _Progress, scorer: Scorer | None) -> dict[str, Any]:
    _, _, stream = _splits(config, task)
    scorer = scorer or task.check
    started = time.monotonic()
    rows, step = [], 0
    for start in range(0, len(stream), config.window):
        window = stream[start:start + config.window]
        # score the whole window with the current context before learning from any of it
        attempts = []
        for sample in window:
            attempts.append(answer(generator, memory, task, sample, feedback))
            if progress.label:
                say(f"{progress.label}: scored {start + len(attempts)}/{len(stream)} of the stream, "
                    f"{eta(start + len(attempts), len(stream), started)}")
        rows += [{"id": s.id, "answer": a.answer, "parsed": a.parsed, "window": start // config.window,
                  "correct": a.parsed and scorer(s, a.answer)} for s, a in zip(window, attempts, strict=True)]
        for sample, attempt in zip(window, attempts, strict=True):
            step += 1
            _learn(memory, generator, task, sample, feedback, step, len(stream), progress, first=attempt)
    progress.seconds = time.monotonic() - progress.started
    n = max(len(rows), 1)
    return {"online_accuracy": sum(r["correct"] for r in rows) / n,
            "parse_rate": sum(r["parsed"] for r in rows) / n, "test_rows": rows,
            "adapt_usage": progress.llm.usage.as_dict()}


def _sub(label: str | None, what: str) -> str | None:
    return f"{label}, {what}" if label else None


def _splits(config: ACEConfig, task: Task) -> tuple[list[Sample], list[Sample], list[Sample]]:
    return (task.train[:config.train_size], task.val[:config.val_size], task.test[:config.test_size])


def _brief(result: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if result is None else {k: result[k] for k in ("accuracy", "parse_rate", "n")}


def _usage_delta(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    return {k: round(end[k] - start[k], 3) for k in end}


def run_name(config: ACEConfig) -> str:
    """The default run name: task-method-mode (and -nolabels)."""
    return f"{config.task}-{config.method}-{config.mode}{'' if config.labels else '-nolabels'}"


def run_adaptation(config: ACEConfig, out: str | Path, name: str | None = None, *, resume: bool = False,
                   overwrite: bool = False, llm: LLM | None = None, embedder: Any = None,
                   label: str | None = None) -> Path:
    """Load the model and task, adapt, write playbook/context, summary and metrics to the run `out/name`
    (progress lines per update and per test question, labelled `label`, by default the run's name).

    An adaptation keeps no mid-run checkpoint: `resume` reuses a finished run with the same config and refuses
    an unfinished one (start it again with `overwrite`)."""
    from reasonlab.llm import load_llm

    run_dir = Path(out) / (name or run_name(config))
    if resume and (run_dir / "summary.json").is_file():
        Run.create(out, run_dir.name, config, resume=True)  # refuses another config
        say(f"reusing the finished adaptation in {run_dir}")
        return run_dir
    if resume:
        Run.require_existing(run_dir)
        raise UserError(f"--resume: the run {run_dir} stopped before it finished, and an adaptation has no mid-run "
                        f"checkpoint: pass --overwrite to start it again")
    run = Run.create(out, run_dir.name, config, overwrite=overwrite)
    task = load_task(config.task, seed=config.seed, data=config.data or None, **config.task_options)
    if llm is None:
        options = {"n_threads": config.n_threads} if config.llm.startswith("llamacpp") and config.n_threads else {}
        llm = load_llm(config.llm, **options)
    if embedder is None and config.method == "ace" and config.dedup:
        from reasonlab.llm.embed import MiniLMEmbedder

        embedder = MiniLMEmbedder()
    memory = build_memory(config, llm, task, embedder)
    summary = adapt(config, llm, task, memory, run, label=label or run_dir.name)
    _save_memory(run, memory)
    if isinstance(memory, (PlaybookMemory, RewriteMemory)) and memory.failures:
        atomic_write_json(run.dir / "failures.json", memory.failures)
    run.write_summary(summary)
    return run.dir
