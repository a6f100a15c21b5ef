"""vLLM in process, for high-throughput generation on GPU machines (the `vllm` extra; never installed in CI).

Token-id prompts, per-token logprobs and structured outputs map onto vLLM's own `SamplingParams`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from reasonlab.errors import UserError
from reasonlab.llm.base import BaseLLM, Generation, Prompt, SamplingParams, prompt_kind

__all__ = ["VLLMLLM"]


class VLLMLLM(BaseLLM):
    """`vllm.LLM` behind the reasonlab interface."""

    def __init__(self, model: str, **engine_args: Any) -> None:
        super().__init__()
        try:
            import vllm
        except ImportError:
            raise UserError(
                "vLLM is not installed: on a CUDA machine pip install 'reasonlab[vllm]' (pip install -e '.[vllm]' "
                "from a checkout), or point openai:URL#MODEL at a vLLM server"
            ) from None
        self._vllm = vllm
        self.name = f"vllm:{model}"
        self.engine = vllm.LLM(model=model, **engine_args)
        self.tokenizer = self.engine.get_tokenizer()

    @property
    def context_length(self) -> int:
        return int(self.engine.llm_engine.model_config.max_model_len)

    def tokenize(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])

    def detokenize(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=True)

    def _sampling(self, params: SamplingParams) -> Any:
        constraint: dict[str, Any] = {}
        if params.constrained:
            module = self._vllm.sampling_params
            fields = {"json": params.json_schema, "regex": params.regex, "grammar": params.grammar}
            if hasattr(module, "StructuredOutputsParams"):  # newer vLLM; older ones call it guided decoding
                constraint = {"structured_outputs": module.StructuredOutputsParams(**fields)}
            else:
                constraint = {"guided_decoding": module.GuidedDecodingParams(**fields)}
        return self._vllm.SamplingParams(
            n=params.n, temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens,
            stop=params.stop or None, seed=params.seed, logprobs=0 if params.logprobs else None, **constraint,
        )

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        started = time.perf_counter()
        inputs: list[Any] = []
        for prompt in prompts:
            kind = prompt_kind(prompt)
            if kind == "tokens":
                inputs.append({"prompt_token_ids": [int(t) for t in prompt]})  # type: ignore[union-attr]
            elif kind == "chat":
                turns = [{"role": m.role, "content": m.content} for m in prompt]  # type: ignore[union-attr]
                inputs.append(self.tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True))
            else:
                inputs.append(prompt)
        outputs = self.engine.generate(inputs, self._sampling(params), use_tqdm=False)
        latency = time.perf_counter() - started
        grouped = []
        for output in outputs:
            group = []
            for completion in output.outputs:
                logprobs = None
                if completion.logprobs is not None:
                    logprobs = [step[tok].logprob for step, tok in zip(completion.logprobs, completion.token_ids, strict=True)]
                group.append(Generation(
                    text=completion.text, token_ids=list(completion.token_ids), logprobs=logprobs,
                    finish_reason="length" if completion.finish_reason == "length" else "stop",
                    prompt_tokens=len(output.prompt_token_ids or []), completion_tokens=len(completion.token_ids),
                    latency_s=latency,
                ))
            grouped.append(group)
        self._record(grouped, started)
        return grouped
