"""Supervised fine-tuning on prompt/completion pairs, with the loss on completion tokens only.

Two backends behind one `train(config, policy, examples)`:
- `trl`: TRL's `SFTTrainer` (prompt-completion dataset, `completion_only_loss`) with an optional peft LoRA
  adapter, for HF policies (`policy.module` is a transformers model, `policy.tokenizer` its tokenizer);
- `plain`: a short AdamW loop over `policy.logprobs`, for any `TrainablePolicy` (the tinylm). It never imports
  transformers, trl or peft for a tinylm, so a tinylm SFT runs without them installed. On an hf policy it also
  trains a LoRA adapter (`policy.enable_lora`) and projects onto the vocabulary only at completion positions,
  which spares most of the 262k-token Gemma head's cost; `bf16` autocasts on the policy's device.

A prompt transform rewrites each example before training (`with_instruction` prefixes a text to every
prompt). Inoculation Prompting places its train-time instruction in the chat messages before rendering instead,
so every arm is built the same way; Moloch's RFT passes the selected winners as the examples.

    config = SFTConfig(epochs=2, learning_rate=2e-4, lora=LoRAConfig(r=8))
    result = train(config, policy, examples, eval_examples=held_out)
    print(result.eval_loss_before, result.eval_loss_after)
"""

from __future__ import annotations

import math
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field

from reasonlab.errors import UserError
from reasonlab.heap import release_memory
from reasonlab.llm.base import TrainablePolicy
from reasonlab.runs import Run
from reasonlab.trackers import TrackerName

__all__ = [
    "CHECKPOINT_NAME",
    "Example",
    "LoRAConfig",
    "PromptTransform",
    "SFTConfig",
    "SFTResult",
    "add_lora",
    "completion_loss",
    "encode_example",
    "load_lora",
    "save_model",
    "train",
    "with_instruction",
]


CHECKPOINT_NAME = "sft_state.pt"


@dataclass(frozen=True)
class Example:
    """One training pair: text (or token ids) for the prompt and the completion the model should learn."""

    prompt: str | Sequence[int]
    completion: str | Sequence[int]


PromptTransform = Callable[[Example], Example]


class LoRAConfig(BaseModel):
    """peft LoRA adapter settings (hf policies: the trl backend, or plain through `policy.enable_lora`)."""

    r: int = Field(16, ge=1, description="adapter rank")
    alpha: int = Field(32, ge=1, description="lora_alpha; the update is scaled by alpha / r")
    dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the adapter input")
    target_modules: str | list[str] = Field(
        "all-linear", description="module names to adapt, or 'all-linear'"
    )


class SFTConfig(BaseModel):
    """Hyperparameters of one SFT run."""

    backend: Literal["auto", "trl", "plain"] = Field(
        "auto", description="auto: trl for transformers models, plain otherwise"
    )
    epochs: float = Field(1.0, gt=0, description="passes over the examples")
    max_steps: int | None = Field(None, ge=1, description="optimizer steps; overrides epochs")
    batch_size: int = Field(8, ge=1, description="examples per forward pass")
    gradient_accumulation_steps: int = Field(1, ge=1, description="forward passes per optimizer step")
    learning_rate: float = Field(2e-4, gt=0, description="AdamW learning rate (2e-4 suits LoRA)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    max_grad_norm: float | None = Field(1.0, gt=0, description="gradient-norm clip; None disables")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="linear warm-up share of the steps")
    lora: LoRAConfig | None = Field(
        None, description="train a LoRA adapter instead of all weights (hf policies, either backend)"
    )
    max_length: int = Field(512, ge=2, description="prompt + completion tokens kept (trl path truncates)")
    add_eos: bool = Field(True, description="end every completion with the EOS token")
    bf16: bool = Field(
        False, description="bf16 autocast (TRL's default on GPUs; on a CPU with AMX about 2x faster; off: float32)"
    )
    seed: int = Field(0, description="data order and initialisation of new weights")
    checkpoint_every: int | None = Field(
        None, ge=1, description="optimizer steps between checkpoints in the run (plain backend; None: none)"
    )
    resume: bool = Field(False, description="continue from the run's SFT checkpoint (plain backend)")
    progress: bool = Field(True, description="show a progress bar")
    report_to: list[TrackerName] = Field(default_factory=list, description="trackers the run directory also "
                                         "reports to: tensorboard, mlflow, wandb (reasonlab.trackers)")


@dataclass
class SFTResult:
    """Losses of one run: per-step training loss, and the held-out completion loss before and after."""

    train_losses: list[float] = field(default_factory=list)
    eval_loss_before: float | None = None
    eval_loss_after: float | None = None
    steps: int = 0


def encode_example(
    policy: TrainablePolicy, example: Example, add_eos: bool = True
) -> tuple[list[int], list[int]]:
    """Prompt and completion token ids. Text is tokenized whole and split where the prompt's own tokens end
    (as TRL does), so the completion gets no second BOS and tokens merging across the boundary stay whole."""
    if isinstance(example.prompt, str) and isinstance(example.completion, str):
        prompt = policy.tokenize(example.prompt)
        full = policy.tokenize(example.prompt + example.completion)
        split = next(
            (i for i, (a, b) in enumerate(zip(prompt, full, strict=False)) if a != b),
            min(len(prompt), len(full)),
        )
        prompt, completion = full[:split], full[split:]
    else:
        prompt = (
            list(example.prompt) if not isinstance(example.prompt, str) else policy.tokenize(example.prompt)
        )
        completion = (
            list(example.completion)
            if not isinstance(example.completion, str)
            else policy.tokenize(example.completion)
        )
    if add_eos and (not completion or completion[-1] != policy.eos_token_id):
        completion.append(policy.eos_token_id)
    if not prompt or not completion:
        raise UserError(f"SFT example {example!r} has an empty prompt or completion: give both some text")
    return prompt, completion


@torch.no_grad()
def completion_loss(
    policy: TrainablePolicy, examples: Sequence[Example], batch_size: int = 16, add_eos: bool = True
) -> float:
    """Mean negative log-likelihood per completion token (the held-out SFT loss)."""
    if not examples:
        raise UserError("no examples to evaluate: pass at least one prompt/completion pair")
    total, count = 0.0, 0
    was_training = policy.module.training
    policy.module.eval()
    for start in range(0, len(examples), batch_size):
        pairs = [encode_example(policy, ex, add_eos) for ex in examples[start : start + batch_size]]
        rows = policy.logprobs([p for p, _ in pairs], [c for _, c in pairs], 1.0)
        total -= float(sum(r.sum() for r in rows))
        count += sum(len(c) for _, c in pairs)
    policy.module.train(was_training)
    return total / max(count, 1)


def train(
    config: SFTConfig,
    policy: TrainablePolicy,
    examples: Sequence[Example],
    eval_examples: Sequence[Example] | None = None,
    transform: PromptTransform | None = None,
    run: Run | None = None,
    should_stop: Callable[[int], bool] | None = None,
) -> SFTResult:
    """Fine-tune `policy` in place on `examples` (after `transform`); report held-out loss when given.
    `should_stop(step)` (plain backend) is called after each optimizer step; True ends training there."""
    if not examples:
        raise UserError("no SFT examples: pass at least one prompt/completion pair")
    if transform is not None:
        examples = [transform(ex) for ex in examples]
    result = SFTResult()
    if eval_examples:
        result.eval_loss_before = completion_loss(policy, eval_examples, config.batch_size, config.add_eos)
    backend = config.backend
    if backend == "auto":
        backend = "trl" if _is_transformers_model(policy.module) else "plain"
    if backend == "trl":
        if should_stop is not None:
            raise UserError("should_stop needs the plain SFT backend: use backend='plain' or drop should_stop")
        if config.checkpoint_every is not None or config.resume:
            raise UserError("SFT checkpoints (checkpoint_every, resume) need the plain backend: set backend='plain'")
        _train_trl(config, policy, examples, result, run)
    elif backend == "plain":
        _train_plain(config, policy, examples, result, run, should_stop)
    else:
        raise ValueError(f"unknown SFT backend {backend!r}: use auto, trl or plain")
    if eval_examples:
        result.eval_loss_after = completion_loss(policy, eval_examples, config.batch_size, config.add_eos)
    if run is not None:
        run.log(
            {
                "kind": "sft",
                "eval_loss_before": result.eval_loss_before,
                "eval_loss_after": result.eval_loss_after,
            }
        )
    return result


def _is_transformers_model(module: Any) -> bool:
    # a transformers model exists only once transformers is imported: the tinylm path never imports it
    if sys.modules.get("transformers") is None:
        return False
    from transformers import PreTrainedModel

    return isinstance(module, PreTrainedModel)


def _total_steps(config: SFTConfig, num_examples: int) -> int:
    if config.max_steps is not None:
        return config.max_steps
    per_epoch = math.ceil(num_examples / (config.batch_size * config.gradient_accumulation_steps))
    return max(1, math.ceil(per_epoch * config.epochs))


def add_lora(policy: TrainablePolicy, lora: LoRAConfig, seed: int) -> None:
    """Wrap an hf policy's model in a fresh LoRA adapter whose initial weights come from `seed` alone (the
    caller's random state is left as it was)."""
    if not hasattr(policy, "enable_lora"):
        raise UserError("LoRA needs a transformers policy (hf:...): set lora=None for this policy")
    from peft import LoraConfig

    devices = [policy.device] if policy.device.type == "cuda" else []  # type: ignore[attr-defined]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        policy.enable_lora(LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                      target_modules=lora.target_modules, task_type="CAUSAL_LM"))


def load_lora(policy: TrainablePolicy, folder: str | Path, lora: LoRAConfig, seed: int = 0) -> None:
    """Load a LoRA adapter saved by `policy.save` (adapter_model.safetensors) into `policy`, adding the adapter
    first when the policy has none; a missing or foreign adapter is a one-line UserError."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = Path(folder) / "adapter_model.safetensors"
    if not path.exists():
        raise UserError(f"{folder} holds no adapter_model.safetensors: point at a folder written by policy.save")
    if not hasattr(policy.module, "disable_adapter"):
        add_lora(policy, lora, seed)
    try:
        result = set_peft_model_state_dict(policy.module, load_file(str(path), device=str(policy.device)))  # type: ignore[attr-defined]
    except RuntimeError as err:  # a tensor of another shape (another rank or model)
        raise UserError(f"{path} does not fit this model and LoRA config ({str(err).strip().splitlines()[-1].strip()}): "
                        "load it with the config it was trained with") from None
    unexpected = getattr(result, "unexpected_keys", None) or []
    if unexpected:
        raise UserError(f"{path} does not fit this model and LoRA config ({len(unexpected)} unexpected tensors, "
                        f"e.g. {unexpected[0]}): load it with the config it was trained with")


def _train_plain(
    config: SFTConfig,
    policy: TrainablePolicy,
    examples: Sequence[Example],
    result: SFTResult,
    run: Run | None,
    should_stop: Callable[[int], bool] | None = None,
) -> None:
    """AdamW over completion-token NLL (a token mean per optimizer step), seeded shuffled epochs."""
    from rich.progress import Progress

    if config.lora is not None and not hasattr(policy.module, "disable_adapter"):  # an adapter already there is trained on
        add_lora(policy, config.lora, config.seed)
    encoded = [encode_example(policy, ex, config.add_eos) for ex in examples]
    parameters = [p for p in policy.module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    steps = _total_steps(config, len(encoded))
    warmup = int(config.warmup_ratio * steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / (warmup + 1)))
    generator = torch.Generator().manual_seed(config.seed)
    order: list[int] = []
    first_step = 0
    checkpoint = _checkpoint_path(config, run)
    if config.resume:
        if checkpoint is None or not checkpoint.is_file():
            raise UserError(f"resume: {checkpoint or 'this run'} holds no SFT checkpoint to continue: drop resume")
        first_step, order = _load_checkpoint(checkpoint, policy, optimizer, scheduler, generator, result)
        if run is not None:
            run.drop_metrics("sft", "step", first_step)
    policy.module.train()
    # dropout masks (LoRA dropout) follow the seed, not the process's history; the caller's random state is
    # restored afterwards, so a run that trains no dropout sees the same random stream as before
    devices = [policy.device] if policy.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), Progress(disable=not config.progress, transient=True) as progress:
        torch.manual_seed(config.seed + first_step)  # a resumed run draws fresh dropout masks from here
        bar = progress.add_task("SFT", total=steps, completed=first_step)
        for step in range(first_step, steps):
            batches = []
            for _ in range(config.gradient_accumulation_steps):
                while len(order) < config.batch_size:
                    order += torch.randperm(len(encoded), generator=generator).tolist()
                batches.append([encoded[i] for i in order[: config.batch_size]])
                order = order[config.batch_size :]
            tokens = sum(len(c) for batch in batches for _, c in batch)
            optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for batch in batches:
                with torch.autocast(policy.device.type, dtype=torch.bfloat16, enabled=config.bf16):
                    rows = policy.logprobs([p for p, _ in batch], [c for _, c in batch], 1.0)
                loss = -torch.cat(rows).sum() / tokens
                loss.backward()
                step_loss += float(loss.detach())
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            if policy.device.type == "cpu":
                # the step's freed activations go back to the system, not the heap: three Moloch workers that
                # kept theirs until the end of a TFB round held 9 GB each and ran the machine out of memory. The
                # price, pages faulted in again by the next step, is 8% of a step (benchmarks/heap_release.py)
                release_memory()
            result.train_losses.append(step_loss)
            if run is not None:
                run.log({"kind": "sft", "loss": step_loss}, step=step)
            progress.update(bar, advance=1, description=f"SFT loss {step_loss:.3f}")
            every = config.checkpoint_every
            if checkpoint is not None and every is not None and (step + 1) % every == 0 and step + 1 < steps:
                _save_checkpoint(checkpoint, step + 1, order, policy, optimizer, scheduler, generator, result)
            if should_stop is not None:
                stop = should_stop(step)  # it may evaluate the policy (eval mode)
                policy.module.train()
                if stop:
                    break
    result.steps = len(result.train_losses)
    policy.module.eval()


def _checkpoint_path(config: SFTConfig, run: Run | None) -> Path | None:
    """Where the plain loop keeps its checkpoint: in the run, when the config asks for checkpoints."""
    if config.checkpoint_every is None and not config.resume:
        return None
    if run is None:
        raise UserError("SFT checkpoints (checkpoint_every, resume) need a run: pass run=Run.create(...)")
    return run.checkpoint_dir / CHECKPOINT_NAME


def _save_checkpoint(path: Path, step: int, order: list[int], policy: TrainablePolicy, optimizer: Any,
                     scheduler: Any, generator: torch.Generator, result: SFTResult) -> None:
    """Trainable weights, optimizer and schedule, the data order still to come and the losses so far."""
    from reasonlab.runs import atomic_write

    state = {
        "step": step,
        "order": list(order),
        "generator": generator.get_state(),
        "parameters": {n: p.detach().cpu() for n, p in policy.module.named_parameters() if p.requires_grad},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "train_losses": list(result.train_losses),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as handle:
        torch.save(state, handle)


def _load_checkpoint(path: Path, policy: TrainablePolicy, optimizer: Any, scheduler: Any,
                     generator: torch.Generator, result: SFTResult) -> tuple[int, list[int]]:
    """Restore what `_save_checkpoint` wrote; (the next step, the data order still to come)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    named = dict(policy.module.named_parameters())
    missing = sorted(set(state["parameters"]) - set(named))
    if missing:
        raise UserError(f"{path} does not fit this model (no parameter {missing[0]}): resume with the same policy")
    with torch.no_grad():
        for name, value in state["parameters"].items():
            named[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    result.train_losses = list(state["train_losses"])
    return int(state["step"]), list(state["order"])


def _train_trl(
    config: SFTConfig,
    policy: TrainablePolicy,
    examples: Sequence[Example],
    result: SFTResult,
    run: Run | None,
) -> None:
    """TRL SFTTrainer on a prompt-completion dataset (completion-only loss), with a peft LoRA adapter if asked."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    tokenizer = policy.tokenizer  # type: ignore[attr-defined]
    quantizer = getattr(policy.module, "hf_quantizer", None)
    if quantizer is not None and getattr(quantizer.quantization_config, "quant_method", None) == "gguf":
        # transformers de-quantizes GGUF weights to float tensors on load; only the marker is left, and the
        # Trainer refuses to train a model that carries it
        quantizer.remove_quantization_config(policy.module)
    # tokenized here, with the same prompt/completion split as `completion_loss`; labels are -100 on the prompt.
    # (Handing TRL text would also work, but datasets then fingerprints the 262k-entry Gemma tokenizer with
    # dill on every map: ~40 s on a 2-core CPU.)
    rows = []
    for ex in examples:
        prompt, completion = encode_example(policy, ex, config.add_eos)
        ids = (prompt + completion)[: config.max_length]
        rows.append({"input_ids": ids, "labels": ([-100] * len(prompt) + completion)[: config.max_length]})
    dataset = Dataset.from_list(rows)
    peft_config = None
    if config.lora is not None:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=config.lora.r,
            lora_alpha=config.lora.alpha,
            lora_dropout=config.lora.dropout,
            target_modules=config.lora.target_modules,
            task_type="CAUSAL_LM",
        )
    output_dir = str(run.dir / "sft") if run is not None else tempfile.mkdtemp(prefix="reasonlab-sft-")
    args = TRLSFTConfig(
        output_dir=output_dir,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm or 0.0,
        warmup_steps=int(config.warmup_ratio * _total_steps(config, len(examples))),
        lr_scheduler_type="constant_with_warmup" if config.warmup_ratio else "constant",
        max_length=config.max_length,
        completion_only_loss=True,
        seed=config.seed,
        bf16=config.bf16,
        use_cpu=not torch.cuda.is_available(),  # transformers refuses bf16 on a machine without a GPU otherwise
        gradient_checkpointing=False,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=not config.progress,
        dataloader_num_workers=0,
        dataset_num_proc=None,
    )

    class _Record(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                result.train_losses.append(float(logs["loss"]))
                if run is not None:
                    run.log({"kind": "sft", "loss": float(logs["loss"])}, step=state.global_step)

    trainer = SFTTrainer(
        model=policy.module,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[_Record()],
    )
    trainer.train()
    result.steps = trainer.state.global_step
    # peft injects the adapter layers into policy.module in place, so the policy now generates with them;
    # adopting the peft wrapper as well lets reference() switch the adapter off instead of copying it
    if peft_config is not None and hasattr(policy, "use_module"):
        policy.use_module(trainer.model)
    policy.module.eval()


def save_model(policy: TrainablePolicy, folder: str | Path) -> Path:
    """Save a trained hf policy as a complete model folder that `hf:folder` loads: a LoRA adapter is merged into
    the weights first. Written beside the target and renamed into place (an older folder is moved aside, then
    removed), so the folder never holds half a model."""
    import shutil

    folder = Path(folder)
    if hasattr(policy.module, "merge_and_unload"):  # peft: the merged weights, not the adapter alone
        policy.use_module(policy.module.merge_and_unload())  # type: ignore[attr-defined]
    staging, old = folder.with_name(folder.name + ".partial"), folder.with_name(folder.name + ".old")
    shutil.rmtree(staging, ignore_errors=True)
    policy.save(str(staging))
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def with_instruction(instruction: str, separator: str = "\n") -> PromptTransform:
    """A prompt transform that puts `instruction` before every prompt (Inoculation Prompting's train-time hook)."""

    def transform(example: Example) -> Example:
        if not isinstance(example.prompt, str):
            raise UserError("with_instruction needs text prompts: pass prompts as strings, not token ids")
        return replace(example, prompt=f"{instruction}{separator}{example.prompt}")

    return transform
