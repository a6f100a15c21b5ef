"""The public names of reasonlab.train, pinned."""

from reasonlab.train import rl, sft, tinylm


def test_public_api():
    assert sorted(tinylm.__all__) == ["TinyLM", "TinyLMConfig", "TinyTransformer", "Tokenizer"]
    assert sorted(rl.__all__) == [
        "Environment",
        "Episode",
        "LossInputs",
        "RLConfig",
        "RLTrainer",
        "Segment",
        "Step",
        "episode_loss_reference",
        "episode_losses",
        "group_advantages",
        "rollout",
        "tasks_for_iteration",
        "train",
    ]
    assert sorted(sft.__all__) == [
        "Example",
        "LoRAConfig",
        "PromptTransform",
        "SFTConfig",
        "SFTResult",
        "completion_loss",
        "encode_example",
        "train",
        "with_instruction",
    ]
    for module in (tinylm, rl, sft):
        assert all(hasattr(module, name) for name in module.__all__)
