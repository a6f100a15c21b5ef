"""The retrieval-only baseline (spec §13.4): MiniLM over memory chunks, the top-k chunks and the question to
the LLM, one answer. It cannot follow links on purpose or write, so an update leaves the memory unchanged
(and its follow-up question is answered from the old memory), as a RAG system over notes would.

    solver = RAGSolver(load_llm("llamacpp:embedded"))
    report = run_bench(tasks, memories, solver)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reasonlab.llm import LLM, SamplingParams
from reasonlab.llm.embed import Embedder, cosine_similarity
from reasonlab.systems.memagent import prompts
from reasonlab.systems.memagent.data import BenchTask
from reasonlab.systems.memagent.evaluation import Attempt
from reasonlab.systems.memagent.memory import Memory

__all__ = ["Chunk", "RAGAnswer", "RAGSolver", "chunk_memory", "rag_prompt"]

@dataclass
class Chunk:
    """A few consecutive lines of one memory file, prefixed with the file's title so that they stand alone."""

    path: str
    text: str


def chunk_memory(files: dict[str, str], lines_per_chunk: int = 4) -> list[Chunk]:
    """Split every file into chunks of `lines_per_chunk` non-empty lines, each starting with its title."""
    chunks = []
    for path, text in sorted(files.items()):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        title = lines[0] if lines and lines[0].startswith("#") else f"# {path}"
        body = lines[1:] if lines and lines[0] == title else lines
        for start in range(0, max(len(body), 1), lines_per_chunk):
            piece = body[start:start + lines_per_chunk]
            chunks.append(Chunk(path, " | ".join([title, *piece])))
    return chunks


def rag_prompt(chunks: Sequence[Chunk], question: str, filters: str | None) -> str:
    """Few-shot completion prompt: instructions, one example, the retrieved notes, the question."""
    notes = "\n".join(prompts.RAG_NOTE.format(path=c.path, text=c.text) for c in chunks)
    rule = prompts.RAG_RULE.format(filters=filters.strip()) if filters and filters.strip() else ""
    return prompts.RAG.format(instructions=prompts.RAG_INSTRUCTIONS, example=prompts.RAG_EXAMPLE, notes=notes,
                              rule=rule, question=question)


@dataclass
class RAGAnswer:
    reply: str
    chunks: list[Chunk]
    prompt_tokens: int
    completion_tokens: int
    seconds: float


class RAGSolver:
    """Top-k MiniLM retrieval over the memory's chunks, then one greedy LLM answer (first line). The chunks'
    vectors are kept per memory content, so tasks on the same memory embed only their question."""

    def __init__(self, llm: LLM, embedder: Embedder | None = None, k: int = 3, max_tokens: int = 48,
                 name: str = "rag") -> None:
        if embedder is None:
            from reasonlab.llm.embed import load_embedder

            embedder = load_embedder("minilm")
        self.llm, self.embedder, self.k, self.name = llm, embedder, k, name
        self._chunk_vectors: dict[tuple[str, ...], np.ndarray] = {}
        self.params = SamplingParams(temperature=0.0, max_tokens=max_tokens, stop=["\n"], logprobs=False)

    def retrieve(self, files: dict[str, str], question: str) -> list[Chunk]:
        chunks = chunk_memory(files)
        texts = tuple(c.text for c in chunks)
        if texts not in self._chunk_vectors:
            self._chunk_vectors[texts] = self.embedder.embed(list(texts))
        scores = cosine_similarity(self.embedder.embed([question]), self._chunk_vectors[texts])[0]
        order = np.argsort(-scores, kind="stable")[: self.k]
        return [chunks[i] for i in order]

    def answer(self, files: dict[str, str], question: str, filters: str | None = None) -> RAGAnswer:
        started = time.perf_counter()
        chunks = self.retrieve(files, question)
        generation = self.llm.complete(rag_prompt(chunks, question, filters), self.params)
        return RAGAnswer(generation.text.strip(), chunks, generation.prompt_tokens, generation.completion_tokens,
                         time.perf_counter() - started)

    def __call__(self, task: BenchTask, memory: Memory) -> Attempt:
        files = memory.files()
        first = self.answer(files, task.question, task.filters)
        attempt = Attempt(first.reply, None, [], "reply", first.prompt_tokens, first.completion_tokens, first.seconds)
        if task.category == "update" and task.followup_question:
            followup = self.answer(files, task.followup_question)
            attempt.followup_reply = followup.reply
            attempt.prompt_tokens += followup.prompt_tokens
            attempt.completion_tokens += followup.completion_tokens
            attempt.seconds += followup.seconds
        return attempt
