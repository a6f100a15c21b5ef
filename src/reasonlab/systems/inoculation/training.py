"""Train one arm (`train`), evaluate a model as an arm is tested (`evaluate`), score instructions by the flaw they
elicit before fine-tuning (`elicit`).

    config = PRESETS["cpu"].model_copy(update={"arm": "ip", "seed": 0})
    run_dir = train(config)                       # runs/inoculation/gcd-ip-s0: config, metrics, summary, policy/
    print(Run.open(run_dir).summary()["test"]["confirms_incorrect"])

Every arm sees the same data in the same order (data.seed) and the same number of optimizer steps; only the
training prompt differs (pitfall 3). The evaluation prompts are byte-identical across arms but PTST (pitfall 1),
and with `generation.with_instruction` each tuned model is also tested with I present, where the flaw should
come back (spec section 1, step 5).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reasonlab.errors import UserError
from reasonlab.progress import phase, say
from reasonlab.runs import Run
from reasonlab.systems.inoculation.config import (
    ElicitConfig,
    EvalConfig,
    GenerationConfig,
    TrainConfig,
)
from reasonlab.systems.inoculation.settings import SettingData, build_setting, render_prompt
from reasonlab.systems.inoculation.transforms import ArmPrompts, Message, split_response

__all__ = ["arm_prompts", "elicit", "evaluate", "generate_replies", "load_policy", "rate_dict", "sft_examples", "train"]


def load_policy(spec: str) -> Any:
    from reasonlab.llm import TrainablePolicy, load_llm

    policy = load_llm(spec)
    if not isinstance(policy, TrainablePolicy):
        raise UserError(f"--llm {spec} is not a trainable model: use hf:embedded or hf:PATH")
    return policy


def sft_examples(setting: SettingData, arm: str, prompts: ArmPrompts) -> list[Any]:
    """The arm's training pairs: prompt text (with the arm's instruction) and the reply as the completion."""
    from reasonlab.train.sft import Example

    examples = []
    for conversation in setting.train:
        prompt, reply = split_response(setting.train_messages(conversation, arm, prompts))
        examples.append(Example(render_prompt(prompt), " " + reply))
    return examples


def generate_replies(policy: Any, prompts: list[list[Message]], generation: GenerationConfig, max_tokens: int,
                     stop: list[str], seed: int = 0, label: str = "generating") -> list[str]:
    """One reply per prompt, batched, with a progress line per batch."""
    from reasonlab.llm.base import SamplingParams

    params = SamplingParams(temperature=generation.temperature, top_p=generation.top_p, seed=seed,
                            max_tokens=generation.max_tokens or max_tokens, stop=stop, logprobs=False)
    replies: list[str] = []
    batches = math.ceil(len(prompts) / generation.batch_size)
    for index in range(batches):
        batch = prompts[index * generation.batch_size : (index + 1) * generation.batch_size]
        outputs = policy.generate([render_prompt(p) for p in batch], params)
        replies += [group[0].text.strip() for group in outputs]
        say(f"{label}: {len(replies)}/{len(prompts)} replies")
    return replies


def rate_dict(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics as JSON: Rates and robust accuracies through as_dict(), plain values as they are."""
    return {key: value.as_dict() if hasattr(value, "as_dict") else value for key, value in metrics.items()}


def evaluate(policy: Any, setting: SettingData, arm: str, prompts: ArmPrompts, generation: GenerationConfig,
             seed: int = 0) -> dict[str, Any]:
    """The setting's metrics for `policy` tested as `arm` is, and (with_instruction) the flaw with I present."""
    test = [setting.test_messages(p, arm, prompts) for p in setting.eval_prompts]
    replies = generate_replies(policy, test, generation, setting.max_tokens, setting.stop, seed, "test")
    result: dict[str, Any] = {"test": rate_dict(setting.score(replies)), "replies": replies[:12]}
    if generation.with_instruction:
        asked = [setting.test_messages(p, arm, prompts, with_instruction=True) for p in setting.flaw_prompts]
        asked_replies = generate_replies(policy, asked, generation, setting.max_tokens, setting.stop, seed,
                                         "test with I")
        result["with_instruction"] = rate_dict(setting.flaw_score(asked_replies))
    return result


def arm_prompts(prompts: ArmPrompts, overrides: Any) -> ArmPrompts:
    """A setting's arm texts with the user's overrides (a new instruction gets a new derived control)."""
    try:
        return overrides.apply(prompts)
    except ValidationError as err:
        message = err.errors()[0]["msg"].removeprefix("Value error, ")
        raise UserError(f"prompts: {message}") from None


def train(config: TrainConfig, policy: Any = None, judge: Any = None) -> Path:
    """LoRA SFT of one arm on its setting, then the evaluation; returns the run directory."""
    from reasonlab.train import sft

    setting = build_setting(config.data, judge)
    prompts = arm_prompts(setting.prompts, config.prompts)
    prompts.test_transform(config.arm)  # PTST without S fails here, before any training
    run = Run.create(config.out, config.run_name, config, resume=config.resume, overwrite=config.overwrite,
                     ignore=("resume", "overwrite"))
    if config.resume and run.summary_path.exists():
        say(f"reusing the finished run {run.dir} (pass --overwrite to train it again)")
        return run.dir
    say(f"{setting.description}; arm {config.arm}, seed {config.seed}")
    with phase(f"inoculation: loading {config.llm}"):
        policy = policy if policy is not None else load_policy(config.llm)
    examples = sft_examples(setting, config.arm, prompts)
    schedule = config.sft.model_copy(update={"seed": config.seed})
    with phase(f"inoculation: fine-tuning arm {config.arm} ({len(examples)} examples)"):
        result = sft.train(schedule, policy, examples, run=run)
    with phase(f"inoculation: evaluating arm {config.arm}"):
        metrics = evaluate(policy, setting, config.arm, prompts, config.generation, config.seed)
    summary = {"setting": setting.name, "arm": config.arm, "seed": config.seed, "flaw": setting.flaw,
               "capability": setting.capability, "steps": result.steps, "train_losses": result.train_losses,
               "instruction": prompts.train_transform(config.arm).text, **metrics}
    run.write_summary(summary)
    return run.dir


def evaluate_command(config: EvalConfig, judge: Any = None) -> dict[str, Any]:
    setting = build_setting(config.data, judge)
    prompts = arm_prompts(setting.prompts, config.prompts)
    policy = load_policy(config.llm)
    return {"setting": setting.name, "arm": config.arm, "flaw": setting.flaw, "capability": setting.capability,
            **evaluate(policy, setting, config.arm, prompts, config.generation)}


def elicit(config: ElicitConfig, policy: Any = None, judge: Any = None) -> list[dict[str, Any]]:
    """Spec section 1, step 2: for each candidate I_k, the untuned model's flaw rate with I_k in the prompt minus
    its rate without an instruction (N), on the setting's flaw prompts. The first row is N itself."""
    setting = build_setting(config.data, judge)
    candidates = config.candidates or _default_candidates(setting.prompts)
    policy = policy if policy is not None else load_policy(config.llm)
    rows = []
    baseline = _flaw_rate(policy, setting, None, setting.prompts, config.generation)
    rows.append({"instruction": "", "flaw": baseline.as_dict(), "elicitation": 0.0})
    for text in candidates:
        if not text.strip():
            raise UserError("an elicitation candidate is empty: give the instruction's text")
        rate = _flaw_rate(policy, setting, text, setting.prompts, config.generation)
        elicitation = None if rate.value is None or baseline.value is None else rate.value - baseline.value
        rows.append({"instruction": text, "flaw": rate.as_dict(), "elicitation": elicitation})
    return rows


def _default_candidates(prompts: ArmPrompts) -> list[str]:
    return [text for text in (prompts.instruction, prompts.control_text, prompts.safety) if text]


def _flaw_rate(policy: Any, setting: SettingData, text: str | None, prompts: ArmPrompts,
               generation: GenerationConfig) -> Any:
    if text is None:
        asked = setting.flaw_prompts
    else:
        placed = prompts.model_copy(update={"instruction": text, "control": None})
        asked = [setting.test_messages(p, "ip", placed, with_instruction=True) for p in setting.flaw_prompts]
    replies = generate_replies(policy, asked, generation, setting.max_tokens, setting.stop,
                               label=f"elicitation of {_short(text) if text else 'no instruction'}")
    return setting.flaw_score(replies)[setting.flaw]


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[:width] + "..."
