"""Our GRPO-family loss against TRL's GRPOTrainer on the very same batch (trl pinned below).

TRL generates a batch with a tiny random Llama, scores it, and computes its loss; inside that same call we
rebuild the batch as reasonlab episodes and compute our loss and gradients with the same weights. One trainer
step serves all three variants: TRL's `_compute_loss` is re-run on the same batch with its dr_grpo and GSPO
settings. To make the
ratios non-trivial both sides get the same perturbed old logprobs. Conventions matched explicitly:
TRL `loss_type` grpo / dr_grpo (and GSPO = `importance_sampling_level="sequence"`), advantages
(R - mean) / (std + 1e-4) with the sample (Bessel) std, `epsilon` 0.2 both sides, beta 0, temperature 1,
one gradient-accumulation step (TRL divides by it), float32 on both sides (TRL defaults to bf16 autocast).
"""

from __future__ import annotations

import statistics

import pytest
import torch

trl = pytest.importorskip("trl")
transformers = pytest.importorskip("transformers")

from reasonlab.train.rl import Episode, RLConfig, RLTrainer, Segment, group_advantages  # noqa: E402
from tiny_hf import tiny_llama, word_tokenizer  # noqa: E402

TRL_VERSION = "1.16.0"
VOCAB = ["<pad>", "<eos>", *[f"w{i}" for i in range(30)]]
NUM_GENERATIONS = 4
MAX_COMPLETION = 6


def _tokenizer():
    return word_tokenizer(VOCAB, unknown="w0")


def _model():
    return tiny_llama(len(VOCAB))


REWARDS: dict[tuple[int, ...], float] = {}  # completion ids as TRL scored them -> reward


def reward_of(completion_ids) -> float:
    """Deterministic reward with spread inside a group: parity of the token-id sum, plus a length term."""
    ids = [int(t) for t in completion_ids]
    return float(sum(ids) % 2) + 0.1 * len(ids)


class HFRowPolicy:
    """Just enough of a TrainablePolicy around an HF causal LM for RLTrainer.loss.

    It lays the rows out as TRL does (prompts left-padded, completions right-padded, one attention mask), so
    both sides score the same tokens with the same padded forward and only the loss formulas are compared.
    """

    def __init__(self, model) -> None:
        self.model = model

    @property
    def module(self):
        return self.model

    def logprobs(self, prompt_ids, completion_ids, temperature: float = 1.0):
        P = max(len(p) for p in prompt_ids)
        C = max(len(c) for c in completion_ids)
        ids = torch.tensor(
            [
                [0] * (P - len(p)) + list(p) + list(c) + [0] * (C - len(c))
                for p, c in zip(prompt_ids, completion_ids, strict=True)
            ]
        )
        mask = torch.tensor(
            [
                [0] * (P - len(p)) + [1] * (len(p) + len(c)) + [0] * (C - len(c))
                for p, c in zip(prompt_ids, completion_ids, strict=True)
            ]
        )
        logits = self.model(input_ids=ids, attention_mask=mask).logits[:, P - 1 : -1].float() / temperature
        logprobs = logits.log_softmax(-1).gather(-1, ids[:, P:, None]).squeeze(-1)  # (B, C)
        return [logprobs[i, : len(c)] for i, c in enumerate(completion_ids)]


VARIANTS = {  # our loss_type -> the TRL GRPOTrainer settings that implement it
    "grpo": {"loss_type": "grpo", "importance_sampling_level": "token"},
    "dr_grpo": {"loss_type": "dr_grpo", "importance_sampling_level": "token"},
    "gspo": {"loss_type": "grpo", "importance_sampling_level": "sequence"},
}


@pytest.fixture(scope="module")
def trl_step(tmp_path_factory):
    """One real GRPOTrainer step (loss_type grpo, scale_rewards group). Inside its loss call, with the weights of
    that moment, TRL's loss and gradients are also taken with the dr_grpo and GSPO settings on the same batch."""
    from datasets import Dataset

    captured: dict[str, dict] = {}

    class CapturingTrainer(trl.GRPOTrainer):
        def _compute_loss(self, model, inputs):
            # same perturbed old logprobs on both sides, so ratios differ from 1 and clipping matters
            completion_mask = inputs["completion_mask"]
            generator = torch.Generator().manual_seed(1)
            noise = 0.3 * torch.randn(completion_mask.shape, generator=generator)
            with torch.no_grad():
                current = HFRowPolicy(model).logprobs(*_rows(inputs))
            old = torch.zeros(completion_mask.shape)
            for i, row in enumerate(current):
                old[i, : len(row)] = row + noise[i, : len(row)]
            inputs = {**inputs, "old_per_token_logps": old}
            params = [p for p in model.parameters() if p.requires_grad]
            episodes = _episodes(inputs)
            for name, settings in VARIANTS.items():
                ours = _our_loss_and_grads(model, inputs, episodes, name, params)
                # TRL's own advantages for grpo/gspo (scale_rewards="group"); for dr_grpo, R - group mean computed
                # by hand from the rewards TRL scored (TRL's scale_rewards="none"), never from our own function
                variant_inputs = inputs
                if name == "dr_grpo":
                    variant_inputs = {**inputs, "advantages": dr_grpo_advantages_by_hand(episodes)}
                saved = {key: getattr(self, key) for key in settings}
                for key, value in settings.items():
                    setattr(self, key, value)
                loss = super()._compute_loss(model, variant_inputs)
                for key, value in saved.items():
                    setattr(self, key, value)
                grads = torch.autograd.grad(loss, params, retain_graph=True)
                captured[name] = {
                    "inputs": variant_inputs,
                    "loss": loss.detach(),
                    "grads": grads,
                    "ours": ours,
                }
            return super()._compute_loss(model, inputs)

    args = trl.GRPOConfig(
        output_dir=str(tmp_path_factory.mktemp("trl")),
        loss_type="grpo",
        importance_sampling_level="token",
        beta=0.0,
        epsilon=0.2,
        scale_rewards="group",
        num_generations=NUM_GENERATIONS,
        per_device_train_batch_size=2 * NUM_GENERATIONS,
        max_completion_length=MAX_COMPLETION,
        max_steps=1,
        learning_rate=1e-3,
        temperature=1.0,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        bf16=False,  # TRL defaults to bf16 autocast; compare in float32
        seed=0,
        logging_steps=1,
        disable_tqdm=True,
        # bias generation towards EOS so completion lengths differ (logprobs come from the unbiased model)
        generation_kwargs={"sequence_bias": {(1,): 2.5}},
    )
    prompts = Dataset.from_list(
        [{"prompt": " ".join(f"w{j}" for j in range(i, i + 2 + i % 3))} for i in range(8)]
    )

    def reward_func(completions, completion_ids, **kwargs):
        rewards = [reward_of(ids) for ids in completion_ids]
        REWARDS.update(
            {tuple(int(t) for t in ids): r for ids, r in zip(completion_ids, rewards, strict=True)}
        )
        return rewards

    trainer = CapturingTrainer(
        model=_model(),
        reward_funcs=reward_func,
        args=args,
        train_dataset=prompts,
        processing_class=_tokenizer(),
    )
    trainer.train()
    return captured


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "gspo"])
def test_loss_matches_trl_grpo_trainer(trl_step, loss_type):
    assert trl.__version__ == TRL_VERSION, f"cross-check pinned to trl {TRL_VERSION}, found {trl.__version__}"
    captured = trl_step[loss_type]
    ours_loss, ours_advantages, ours_grads = captured["ours"]
    assert torch.allclose(ours_advantages, captured["inputs"]["advantages"].float(), atol=1e-5)
    assert abs(float(ours_loss) - float(captured["loss"])) < 1e-5
    assert abs(float(captured["loss"])) > 1e-3  # a non-trivial value
    for ours, theirs in zip(ours_grads, captured["grads"], strict=True):
        assert torch.allclose(ours, theirs, atol=1e-6, rtol=1e-5)


def dr_grpo_advantages_by_hand(episodes: list[Episode]) -> torch.Tensor:
    """Dr.GRPO's advantage (arXiv 2503.20783): A_i = R_i - mean of R over the group, no std division."""
    by_group: dict[int, list[float]] = {}
    for ep in episodes:
        by_group.setdefault(ep.group, []).append(ep.reward)
    advantages = [ep.reward - statistics.fmean(by_group[ep.group]) for ep in episodes]
    assert any(abs(a) > 0.05 for a in advantages)  # the batch has reward spread inside groups
    return torch.tensor(advantages, dtype=torch.float32)


def _rows(inputs):
    prompts = [
        ids[mask.bool()].tolist()
        for ids, mask in zip(inputs["prompt_ids"], inputs["prompt_mask"], strict=True)
    ]
    completions = [
        ids[mask.bool()].tolist()
        for ids, mask in zip(inputs["completion_ids"], inputs["completion_mask"], strict=True)
    ]
    return prompts, completions


def _episodes(inputs) -> list[Episode]:
    prompts, completions = _rows(inputs)
    old = inputs["old_per_token_logps"]
    # TRL shuffles rows after generation: a group is the set of rows with the same prompt
    group_of = {tuple(p): g for g, p in enumerate(dict.fromkeys(tuple(p) for p in prompts))}
    return [
        Episode(
            task=None,
            group=group_of[tuple(p)],
            segments=[Segment(prompt_ids=p, completion_ids=c, logprobs=old[i, : len(c)].tolist())],
            reward=REWARDS[tuple(c)] if tuple(c) in REWARDS else REWARDS[tuple(c[:-1])],  # TRL may drop EOS
        )
        for i, (p, c) in enumerate(zip(prompts, completions, strict=True))
    ]


def _our_loss_and_grads(model, inputs, episodes, loss_type, params):
    old = inputs["old_per_token_logps"]
    config = RLConfig(
        loss_type=loss_type,
        epsilon_low=0.2,
        epsilon_high=0.2,
        advantage_epsilon=1e-4,
        advantage_std="sample",
        dr_grpo_norm=MAX_COMPLETION,
        learning_rate=1e-3,
        progress=False,
    )
    trainer = RLTrainer(config, HFRowPolicy(model), environment=None)
    rewards = torch.tensor([ep.total_reward for ep in episodes], dtype=torch.float64)
    groups = torch.tensor([ep.group for ep in episodes])
    advantages = group_advantages(rewards, groups, loss_type, 1e-4, "sample").float()
    old_rows = {i: [old[i, : len(ep.segments[0].completion_ids)]] for i, ep in enumerate(episodes)}
    losses, _ = trainer.loss(episodes, list(range(len(episodes))), advantages, old_rows)
    loss = losses.mean()
    grads = torch.autograd.grad(loss, params)
    return loss.detach(), advantages, grads
