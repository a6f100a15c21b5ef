"""RL on the pipeline's QA against continued pretraining (CPT) on the same documents at equal tokens: one arm per
run (`train`), arms x seeds in one comparison (`compare`).

    run_dir = train(TRAIN_PRESETS["record"].model_copy(update={"arm": "rl", "seed": 0}))
    compare_dir = compare(TRAIN_PRESETS["record"], seeds=[0, 1, 2], out="runs/webscale", jobs=2)

Arms: `base` (no training), `rl` (GRPO with a LoRA adapter on the training QA, reward `exact_match_reward`),
`cpt` (LoRA next-token training on the text of the documents behind the RL QA). Every arm is scored by
closed-book accuracy on QA of held-out documents and on held-back questions of the RL documents.

The paper's token convention (spec section 5): RL tokens are the tokens of the source documents behind the QA
used, so CPT reads exactly those documents once; both counts are recorded, with the QA and rollout tokens beside
them. Deviations: Gemma-3-270M with LoRA instead of Qwen2.5-3B full weights; no SFT warm-up (the few-shot prompt
gives the format); the judge is the exact-match reward; GRPO for a few dozen iterations on a few dozen QA.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from reasonlab.errors import UserError
from reasonlab.llm.base import SamplingParams
from reasonlab.progress import eta, heartbeat, phase, say
from reasonlab.runs import Run, atomic_write_json, config_hash, read_records
from reasonlab.stats import mean_spread
from reasonlab.systems.webscale_rl.config import TrainConfig
from reasonlab.systems.webscale_rl.decontamination import NgramIndex, decontaminate_stage
from reasonlab.systems.webscale_rl.environment import QAEnvironment
from reasonlab.systems.webscale_rl.records import Record
from reasonlab.systems.webscale_rl.reward import closed_book_accuracy
from reasonlab.threads import configure_threads
from reasonlab.train import rl, sft

__all__ = [
    "ARMS",
    "QASplit",
    "compare",
    "cpt_examples",
    "document_hash",
    "document_windows",
    "load_pipeline_output",
    "rl_tasks_used",
    "split_qa",
    "summarize_comparison",
    "train",
]

ARMS: tuple[str, ...] = ("base", "rl", "cpt")
EVAL_SETS: tuple[str, ...] = ("heldout_documents", "seen_documents")
_SPLIT_SALT = "webscale-rl-split"


# data and split


def load_pipeline_output(config: TrainConfig) -> tuple[list[Record], dict[str, Record]]:
    """The QA records and the documents (by doc_id) of a pipeline run folder."""
    folder = Path(config.data)
    paths = {"qa": folder / config.qa_file, "documents": folder / config.documents_file}
    for what, path in paths.items():
        if not path.is_file():
            raise UserError(f"{path} does not exist: point data at a pipeline run folder, or {what}_file at the "
                            f"file in it that holds the {what}")
    qas = [qa for qa in read_records(paths["qa"]) if str(qa.get("answer", "")).strip()]
    documents = {doc["doc_id"]: doc for doc in read_records(paths["documents"])}
    if not qas:
        raise UserError(f"{paths['qa']} holds no QA pair with an answer: run the pipeline first")
    return qas, documents


def document_hash(key: str) -> float:
    """A stable number in [0, 1) for a doc_id or qa_id: the split and every order in it follow it."""
    digest = hashlib.sha256(f"{_SPLIT_SALT}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class QASplit:
    """Which QA pairs play which part; documents never cross from held-out to training."""

    shots: list[Record]  # solved examples in every prompt (training documents outside the RL set)
    rl_qa: list[Record]  # the RL tasks (decontaminated against both evaluation sets)
    heldout_qa: list[Record]  # QA of held-out documents, evaluated
    seen_qa: list[Record]  # held-back questions of the RL documents ("seen documents, unseen questions")
    document_tokens: dict[str, int]  # tokens of every RL document (the policy's tokenizer, no special tokens)
    counts: dict[str, Any] = field(default_factory=dict)

    def eval_sets(self) -> dict[str, list[Record]]:
        return {"heldout_documents": self.heldout_qa, "seen_documents": self.seen_qa}


def _decontamination_text(qa: Record) -> str:
    # the evidence sentence (it holds the answer), not the templated question: every question of a page shares its
    # "From <title>, under the heading <h>: what name fills the blank in" prefix, which would flag them all
    return str(qa.get("evidence") or f"{qa['question']} {qa['answer']}")


def split_qa(qas: Sequence[Record], documents: dict[str, Record], config: TrainConfig,
             count_tokens: Callable[[str], int]) -> QASplit:
    """Held-out documents by doc_id hash; in hash order over the rest: `shots` QA from distinct documents, then
    RL documents (each at most `max_document_tokens`) until `train_document_tokens`, each holding back
    `unseen_per_document` questions; RL and shot QA sharing an n-gram with a held-out item are dropped."""
    by_doc: dict[str, list[Record]] = {}
    for qa in sorted(qas, key=lambda qa: document_hash(qa["qa_id"])):
        by_doc.setdefault(qa["doc_id"], []).append(qa)
    heldout_docs = sorted((d for d in by_doc if document_hash(d) < config.heldout_fraction), key=document_hash)
    train_docs = sorted((d for d in by_doc if d not in heldout_docs and d in documents), key=document_hash)
    held_back = {d: by_doc[d][: config.unseen_per_document] for d in train_docs
                 if len(by_doc[d]) > config.unseen_per_document}
    heldout_all = [qa for d in heldout_docs for qa in by_doc[d]]
    index = NgramIndex.from_texts([_decontamination_text(qa) for qa in heldout_all + _flat(held_back.values())],
                                  config.decontamination_ngram)
    candidates = {d: by_doc[d][len(held_back.get(d, [])):] for d in train_docs}
    views = [{"qa_id": qa["qa_id"], "question": _decontamination_text(qa), "answer": ""}
             for qa in _flat(candidates.values())]
    removed = {r["id"] for r in decontaminate_stage(views, index).rejected}
    clean = {d: [qa for qa in rows if qa["qa_id"] not in removed] for d, rows in candidates.items()}
    shot_docs = [d for d in train_docs if clean[d]][: config.shots]
    shots = [clean[d][0] for d in shot_docs]
    tokens: dict[str, int] = {}
    for doc_id in train_docs:
        if doc_id in shot_docs or not clean[doc_id]:
            continue
        count = count_tokens(documents[doc_id]["text"])
        if count > config.max_document_tokens:
            continue
        if sum(tokens.values()) + count > config.train_document_tokens:
            break
        tokens[doc_id] = count
    rl_qa = [qa for d in tokens for qa in clean[d]]
    seen_qa = [qa for d in tokens for qa in held_back.get(d, [])][: config.max_eval_qa]
    heldout_qa = sorted(heldout_all, key=lambda qa: document_hash(qa["qa_id"]))[: config.max_eval_qa]
    if len(shots) < config.shots or not rl_qa or not heldout_qa:
        raise UserError(f"{config.data}: too few QA for the split ({len(shots)} shots, {len(rl_qa)} RL QA, "
                        f"{len(heldout_qa)} held-out QA): lower shots or raise heldout_fraction / "
                        "train_document_tokens / max_document_tokens, or run the pipeline on more documents")
    counts = {"qa": len(qas), "documents_with_qa": len(by_doc), "heldout_documents": len(heldout_docs),
              "train_documents": len(train_docs), "qa_without_document": sum(len(by_doc[d]) for d in by_doc
                                                                             if d not in documents),
              "rl_documents": len(tokens), "rl_qa": len(rl_qa), "seen_qa": len(seen_qa),
              "heldout_qa": len(heldout_qa), "heldout_qa_all": len(heldout_all),
              "decontaminated": len(removed), "decontaminated_ids": sorted(removed)}
    return QASplit(shots, rl_qa, heldout_qa, seen_qa, tokens, counts)


def _flat(groups: Any) -> list[Record]:
    return [qa for group in groups for qa in group]


# token accounting


def rl_tasks_used(tasks: Sequence[Record], iterations: int, tasks_per_iteration: int, seed: int) -> list[Record]:
    """The distinct QA an RL run of `iterations` draws (in order of first use), from the trainer's own sampler."""
    used: dict[str, Record] = {}
    for iteration in range(iterations):
        for task in rl.tasks_for_iteration(tasks, iteration, tasks_per_iteration, seed):
            used.setdefault(task["qa_id"], task)
    return list(used.values())


def document_windows(token_lists: Sequence[Sequence[int]], window: int, multiple: int) -> list[list[int]]:
    """Each document cut into consecutive windows of at most `window` tokens; the longest windows are then halved
    until the count is a multiple of `multiple` (whole batches). Every token lands in exactly one window."""
    windows = [list(tokens[i : i + window]) for tokens in token_lists for i in range(0, len(tokens), window)]
    while windows and len(windows) % multiple:
        longest = max(range(len(windows)), key=lambda i: len(windows[i]))
        tokens = windows[longest]
        if len(tokens) < 2:
            raise UserError(f"{sum(map(len, windows))} document tokens cannot fill whole batches of {multiple} "
                            "windows: lower cpt_batch_size or raise train_document_tokens")
        windows[longest : longest + 1] = [tokens[: len(tokens) // 2], tokens[len(tokens) // 2 :]]
    return windows


def cpt_examples(policy: Any, texts: Sequence[str], window: int, batch_size: int) -> list[Any]:
    """CPT as completion-only SFT: every window of the documents' tokens is a completion after a BOS prompt."""
    prompt = policy.tokenize("")[:1] or [policy.eos_token_id]  # the BOS, or EOS as a document separator
    token_lists = [policy.tokenize(text, add_special_tokens=False) for text in texts]
    return [sft.Example(prompt, tokens) for tokens in document_windows(token_lists, window, batch_size)]


# one arm


def train(config: TrainConfig, policy: Any = None) -> Path:
    """Train one arm for one seed and evaluate it closed-book before and after; returns the run directory."""
    run = Run.create(config.out, config.run_name, config, resume=config.resume, overwrite=config.overwrite)
    if config.resume and run.summary_path.exists():
        say(f"reusing the finished run {run.dir} (pass overwrite to train it again)")
        return run.dir
    if config.threads:
        configure_threads(config.threads)
    with heartbeat("webscale"):
        summary = _run_arm(config, run, policy)
    run.write_summary(summary)
    return run.dir


def _run_arm(config: TrainConfig, run: Run, policy: Any) -> dict[str, Any]:
    """Load, split, evaluate the untrained model (cached), train the arm, evaluate again; the run's summary."""
    started = time.perf_counter()
    qas, documents = load_pipeline_output(config)
    with phase(f"webscale train: loading {config.llm}"):
        policy = policy if policy is not None else _load_policy(config.llm)
    split = split_qa(qas, documents, config, lambda text: len(policy.tokenize(text, add_special_tokens=False)))
    say(f"split: {len(split.rl_qa)} RL QA from {len(split.document_tokens)} documents "
        f"({sum(split.document_tokens.values())} tokens), {len(split.heldout_qa)} held-out-document QA, "
        f"{len(split.seen_qa)} seen-document QA, {split.counts['decontaminated']} removed by decontamination")
    seconds: dict[str, float] = {}
    mark = time.perf_counter()
    before = _before_accuracy(policy, split, config)
    seconds["eval_before"] = time.perf_counter() - mark
    mark = time.perf_counter()
    if config.arm == "rl":
        training = _train_rl(config, policy, split, run)
    elif config.arm == "cpt":
        training = _train_cpt(config, policy, split, documents, run)
    elif config.arm == "base":
        training = {"tokens": {"document_tokens": 0}}
    else:
        raise ValueError(f"unknown arm {config.arm!r}: use base, rl or cpt")
    seconds["train"] = time.perf_counter() - mark
    mark = time.perf_counter()
    after = before if config.arm == "base" else _evaluate(policy, split, config, "after")
    seconds["eval_after"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - started
    return {"arm": config.arm, "seed": config.seed, "llm": config.llm, "split": split.counts,
            "shots": [qa["qa_id"] for qa in split.shots], "before": before, "after": after,
            "gain": {name: after[name]["rate"] - before[name]["rate"] for name in EVAL_SETS if name in after},
            **training, "seconds": seconds, "peak_rss_mb": _peak_rss_mb()}


def _load_policy(spec: str) -> Any:
    from reasonlab.llm import TrainablePolicy, load_llm

    policy = load_llm(spec)
    if not isinstance(policy, TrainablePolicy):
        raise UserError(f"llm {spec} is not a trainable model: use hf:embedded or hf:PATH")
    return policy


@contextlib.contextmanager
def _autocast(policy: Any, enabled: bool) -> Iterator[None]:
    """bf16 autocast on the policy's device (on a CPU with AMX about 2x faster than float32)."""
    device = getattr(policy, "device", None)
    with torch.autocast(device.type if device is not None else "cpu", dtype=torch.bfloat16, enabled=enabled):
        yield


def _evaluate(policy: Any, split: QASplit, config: TrainConfig, label: str) -> dict[str, Any]:
    """Closed-book accuracy on each evaluation set (greedy, `eval_max_tokens`, stop at the end of the line)."""
    params = SamplingParams(temperature=0.0, max_tokens=config.eval_max_tokens, stop=["\n"], logprobs=False)
    result = {}
    for name, qas in split.eval_sets().items():
        if not qas:
            continue
        with phase(f"{config.run_name}: closed-book accuracy {label}, {name} ({len(qas)} QA)"), \
                _autocast(policy, config.bf16):
            result[name] = closed_book_accuracy(policy, qas, split.shots, params, config.eval_batch_size,
                                                instruction=config.instruction)
        say(f"  {config.run_name} {name}: {result[name]['k']}/{result[name]['n']} correct")
    return result


def _before_accuracy(policy: Any, split: QASplit, config: TrainConfig) -> dict[str, Any]:
    """The untrained model's accuracy, cached by everything that fixes it (the same for every arm and seed)."""
    fixed = config.model_dump(include={"llm", "qa_file", "documents_file", "heldout_fraction", "shots", "instruction",
                                       "train_document_tokens", "max_document_tokens", "unseen_per_document",
                                       "max_eval_qa", "decontamination_ngram", "eval_max_tokens",
                                       "eval_batch_size", "bf16"})
    fixed["data"] = _fingerprint(Path(config.data) / config.qa_file, Path(config.data) / config.documents_file)
    path = Path(config.out) / "eval-cache" / f"before-{config_hash(fixed)}.json"
    if path.is_file():
        say(f"reusing the untrained model's accuracy from {path}")
        return json.loads(path.read_text())
    result = _evaluate(policy, split, config, "before")
    atomic_write_json(path, result)
    return result


def _fingerprint(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _train_rl(config: TrainConfig, policy: Any, split: QASplit, run: Run) -> dict[str, Any]:
    """GRPO with a fresh LoRA adapter on the RL QA; resumes from the run's checkpoint when there is one."""
    rl_config = config.rl.model_copy(update={"seed": config.seed, "resume": rl.has_checkpoint(run),
                                             "progress": False})
    used = rl_tasks_used(split.rl_qa, rl_config.iterations, rl_config.tasks_per_iteration, config.seed)
    environment = QAEnvironment(split.shots, config.instruction)
    sft.add_lora(policy, config.lora, config.seed)

    def report(iteration: int, metrics: dict[str, Any]) -> None:
        say(f"  {config.run_name}: RL iteration {iteration + 1}/{rl_config.iterations}: reward {metrics['reward_mean']:.3f}, "
            f"{metrics['seconds']:.0f} s")

    with phase(f"{config.run_name}: GRPO, {rl_config.iterations} iterations over {len(split.rl_qa)} QA"), \
            _autocast(policy, config.bf16):
        history = rl.train(rl_config, policy, environment, split.rl_qa, run=run, on_iteration=report)
    prompt_tokens = sum(len(policy.prompt_ids(environment.reset(task))) * rl_config.group_size
                        for i in range(rl_config.iterations)
                        for task in rl.tasks_for_iteration(split.rl_qa, i, rl_config.tasks_per_iteration,
                                                           config.seed))
    documents = sorted({qa["doc_id"] for qa in used})
    tokens = {"document_tokens": sum(split.document_tokens[d] for d in documents),
              "documents_used": len(documents), "qa_used": len(used),
              "qa_tokens": sum(len(policy.tokenize(f"{qa['question']} {qa['answer']}", add_special_tokens=False))
                               for qa in used),
              "rollout_prompt_tokens": prompt_tokens,
              "rollout_completion_tokens": round(sum(m["completion_tokens_mean"] * m["episodes"] for m in history))}
    rewards = [m["reward_mean"] for m in history]
    window = max(1, len(rewards) // 5)
    return {"tokens": tokens, "rl": {"iterations": len(history), "reward_first": mean_spread(rewards[:window]),
                                     "reward_last": mean_spread(rewards[-window:]),
                                     "train_seconds": sum(m["seconds"] for m in history)}}


def _train_cpt(config: TrainConfig, policy: Any, split: QASplit, documents: dict[str, Record],
               run: Run) -> dict[str, Any]:
    """LoRA next-token training on the documents behind the QA the RL arm of this seed uses, read once."""
    used = rl_tasks_used(split.rl_qa, config.rl.iterations, config.rl.tasks_per_iteration, config.seed)
    doc_ids = sorted({qa["doc_id"] for qa in used}, key=document_hash)
    texts = [documents[doc_id]["text"] for doc_id in doc_ids]
    examples = cpt_examples(policy, texts, config.cpt_window_tokens, config.cpt_batch_size)
    trained = sum(len(example.completion) for example in examples)
    expected = sum(split.document_tokens[d] for d in doc_ids)
    if trained != expected:
        raise RuntimeError(f"CPT windows hold {trained} tokens, the RL documents {expected}")
    sft_config = sft.SFTConfig(backend="plain", epochs=1, batch_size=config.cpt_batch_size,
                               learning_rate=config.cpt_learning_rate, lora=config.lora, add_eos=False,
                               bf16=config.bf16, max_length=config.cpt_window_tokens + 1, seed=config.seed,
                               progress=False)
    run.drop_metrics("sft", "step", 0)  # a resumed CPT starts over: no checkpoints inside one epoch
    steps = len(examples) // config.cpt_batch_size
    clock = time.monotonic()

    def report(step: int) -> bool:
        if (step + 1) % 5 == 0 or step + 1 == steps:
            say(f"  {config.run_name}: CPT step {step + 1}/{steps}, {eta(step + 1, steps, clock)}")
        return False

    with phase(f"{config.run_name}: CPT on {trained} document tokens in {len(examples)} windows of <= "
               f"{config.cpt_window_tokens}"):
        result = sft.train(sft_config, policy, examples, run=run, should_stop=report)
    return {"tokens": {"document_tokens": trained, "documents_used": len(doc_ids), "windows": len(examples)},
            "cpt": {"steps": result.steps, "loss_first": result.train_losses[0],
                    "loss_last": result.train_losses[-1]}}


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# arms x seeds


def compare(config: TrainConfig, seeds: Sequence[int], out: str | Path, jobs: int = 1,
            name: str = "webscale-compare") -> Path:
    """Every arm for every seed in one comparison run folder (`<arm>-s<seed>` inside it; finished runs are
    reused), then `summary.json` and `plots/accuracy_by_arm.png`; `jobs` processes of one torch thread each."""
    if not seeds:
        raise UserError("compare needs at least one seed: pass seeds such as [0, 1, 2]")
    if jobs < 1:
        raise UserError(f"jobs={jobs}: pass at least 1")
    identity = {"train": config.model_dump(exclude={"arm", "seed", "out", "name", "resume", "overwrite",
                                                    "report_to"}),
                "seeds": list(seeds), "arms": list(ARMS)}
    if config.report_to:  # the comparison reports where its arm runs (config copies) do; no part of a resume check
        identity["report_to"] = list(config.report_to)
    run = Run.create(out, name, identity, resume=config.resume, overwrite=config.overwrite)
    runs = [config.model_copy(update={"arm": arm, "seed": seed, "out": str(run.dir), "name": None,
                                      "resume": True, "overwrite": False})
            for arm in ("rl", "cpt", "base") for seed in seeds]  # longest first
    # the first base run computes the untrained model's accuracy that every other run then reuses
    first = next(r for r in runs if r.arm == "base")
    _run_arms([first], jobs=1)
    _run_arms([r for r in runs if r is not first], jobs)
    rows = [Run.open(run.dir / r.run_name).summary() for r in runs]
    summary = summarize_comparison(rows)
    run.write_summary(summary)
    plot_comparison(summary, run.plot_path("accuracy_by_arm"))
    return run.dir


def _run_arms(configs: Sequence[TrainConfig], jobs: int) -> None:
    if jobs == 1 or len(configs) < 2:
        for config in configs:
            train(config)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    try:
        # a fresh process per run: one torch thread each, and each run's peak memory is its own
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 max_tasks_per_child=1) as pool:
            for future in [pool.submit(_train_worker, config) for config in configs]:
                future.result()
    except BrokenProcessPool:
        raise UserError(f"a worker process of jobs={jobs} died (out of memory?): run the comparison again with "
                        "resume and fewer jobs; finished runs are reused") from None


def _train_worker(config: TrainConfig) -> Path:
    configure_threads(1)
    return train(config)


def summarize_comparison(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per arm: accuracy after training on each evaluation set (mean, sd, n over seeds) and the tokens, time
    and memory it took; per pair (rl-base, rl-cpt, cpt-base): the per-seed differences with their spread."""
    by_arm: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        by_arm.setdefault(row["arm"], {})[row["seed"]] = row
    arms = {}
    for arm, per_seed in by_arm.items():
        runs = list(per_seed.values())
        arms[arm] = {name: mean_spread([r["after"].get(name, {}).get("rate") for r in runs]) for name in EVAL_SETS}
        arms[arm].update({
            "eval_n": {name: runs[0]["after"].get(name, {}).get("n", 0) for name in EVAL_SETS},
            "tokens": {key: mean_spread([r["tokens"].get(key) for r in runs]) for key in runs[0]["tokens"]},
            "rl_reward_last": mean_spread([r["rl"]["reward_last"]["mean"] for r in runs if "rl" in r]),
            "train_seconds": mean_spread([r["seconds"]["train"] for r in runs]),
            "total_seconds": mean_spread([r["seconds"]["total"] for r in runs]),
            "peak_rss_mb": mean_spread([r["peak_rss_mb"] for r in runs]),
        })
    differences = {}
    for left, right in (("rl", "base"), ("rl", "cpt"), ("cpt", "base")):
        if left not in by_arm or right not in by_arm:
            continue
        seeds = sorted(set(by_arm[left]) & set(by_arm[right]))
        differences[f"{left}-{right}"] = {}
        for name in EVAL_SETS:
            values = [by_arm[left][s]["after"][name]["rate"] - by_arm[right][s]["after"][name]["rate"]
                      for s in seeds if name in by_arm[left][s]["after"] and name in by_arm[right][s]["after"]]
            differences[f"{left}-{right}"][name] = {**mean_spread(values), "per_seed": values}
    first = rows[0]
    return {"arms": arms, "differences": differences, "before": {n: first["before"][n] for n in first["before"]},
            "seeds": sorted({row["seed"] for row in rows}), "split": first["split"]}


def plot_comparison(summary: dict[str, Any], path: Path) -> None:
    """Closed-book accuracy by arm on each evaluation set: bars at the mean over seeds, error bars one sd."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [arm for arm in ARMS if arm in summary["arms"]]
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    width = 0.8 / max(len(arms), 1)
    for k, arm in enumerate(arms):
        stats = [summary["arms"][arm][name] for name in EVAL_SETS]
        axis.bar([i + k * width for i in range(len(EVAL_SETS))], [100 * (s["mean"] or 0) for s in stats], width,
                 yerr=[100 * (s["sd"] or 0) for s in stats], capsize=4, label=f"{arm} (n={stats[0]['n']} seeds)")
    sizes = summary["arms"][arms[0]]["eval_n"]
    axis.set_xticks([i + width * (len(arms) - 1) / 2 for i in range(len(EVAL_SETS))],
                    [f"held-out documents\n({sizes['heldout_documents']} QA)",
                     f"seen documents, unseen questions\n({sizes['seen_documents']} QA)"])
    axis.set_ylabel("closed-book exact match (%)")
    axis.set_title("RL vs continued pretraining at equal document tokens")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
