"""Webscale-RL configs: `PipelineConfig` (`reasonlab webscale run`: documents -> verifiable QA) with its stage
configs and `PIPELINE_PRESETS` (the first is the run of record).

The paper runs four GPT-4.1 stages (filter, identifier, generator, checker) over ~1M documents; the CPU plan (spec
section 9) keeps the stages and their pass rules but makes filter, identification and checks deterministic (rules
plus MiniLM) and generation extractive, with the embedded Gemma-3-270M allowed only to paraphrase a question under
a JSON schema. `mode="free"` is the paper's generator for a capable endpoint (`--llm openai:URL#MODEL`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from reasonlab.llm.base import SamplingParams
from reasonlab.trackers import REPORT_TO_DESCRIPTION, TrackerName
from reasonlab.train.rl_config import RLConfig
from reasonlab.train.sft import LoRAConfig

__all__ = [
    "DOMAINS",
    "PIPELINE_PRESETS",
    "TRAIN_PRESETS",
    "CheckConfig",
    "CorpusConfig",
    "DecontaminationConfig",
    "DedupConfig",
    "FilterConfig",
    "GenerateConfig",
    "IdentifyConfig",
    "PipelineConfig",
    "TrainConfig",
]

# the reference code's ten domain labels (spec section 2)
DOMAINS: tuple[str, ...] = (
    "Math", "Technology & Engineering", "Coding", "Social Science", "Natural Science", "Travel & Lifestyle",
    "Commerce & Economics", "Medicine & Health", "Education", "Other",
)
RECORD_CORPUS = "debian:python3.11-doc"


class CorpusConfig(BaseModel):
    """Where the documents come from and which inputs are skipped before any stage sees them."""

    input: str = Field(RECORD_CORPUS, description="a folder of .txt/.md/.html/.jsonl files, one such file, or "
                       "debian:PACKAGE (unpacked into the cache; the run of record reads python3.11-doc's HTML)")
    text_field: str = Field("text", description="the JSON-lines field holding a document's text")
    id_field: str = Field("id", description="the JSON-lines field holding a document's id (else file:line)")
    max_documents: int | None = Field(None, ge=1, description="stop reading once this many documents are kept; "
                                      "files are read in path order, so a folder gives its first ones by id "
                                      "[default: all]")
    max_file_bytes: int = Field(20_000_000, ge=1, description="files larger than this are skipped unread "
                                "(too-large); JSON-lines files are streamed, each row checked against "
                                "max_document_chars instead")
    max_document_chars: int = Field(120_000, ge=1, description="a document longer than the generator's context "
                                    "(at ~4 characters per token) is skipped (too-large)")


class FilterConfig(BaseModel):
    """Stage 1 (the paper: GPT-4.1 says qualified Y/N, lenient): length, boilerplate and informativeness rules."""

    min_words: int = Field(50, ge=0, description="the paper's heuristic prefilter: at least 50 tokens")
    max_boilerplate: float = Field(0.7, ge=0, le=1, description="largest share of boilerplate lines (navigation, "
                                   "link lists, index entries, short fragments; code lines not counted) a document "
                                   "may have (python3.11-doc: index and contents pages >= 0.74, pages kept <= 0.56)")
    min_informativeness: float = Field(-0.1, description="smallest MiniLM score (mean similarity to informative "
                                       "anchors minus mean similarity to boilerplate anchors; python3.11-doc: median "
                                       "page kept -0.004, its landing and link pages under -0.1)")


class IdentifyConfig(BaseModel):
    """Stage 2 (the paper: GPT-4.1-mini names one domain and up to three personas)."""

    max_personas: int = Field(3, ge=1, le=3, description="personas per document (the paper: at most 3)")
    llm_identifier: bool = Field(False, description="let the LLM name domain and personas under a JSON schema "
                                 "(the paper's identifier; capable endpoints only) instead of MiniLM centroids "
                                 "and the fixed persona lists")


class GenerateConfig(BaseModel):
    """Stage 3: one QA pair per persona. Extractive on CPU; the paper's free generation for capable endpoints."""

    mode: Literal["extractive", "paraphrase", "free"] = Field(
        "extractive", description="extractive: a span (number, date, name, identifier) becomes the answer and its "
        "sentence the question, no LLM; paraphrase: the LLM rewrites that question under a JSON schema (the answer "
        "stays the span); free: the LLM writes question and answer from the document (the paper's generator)")
    few_shot: int = Field(2, ge=0, description="examples from the document's domain in the free prompt (paper: 2)")
    temperature: float = Field(0.0, ge=0, description="sampling temperature (the paper: 1.0)")
    max_tokens: int = Field(96, ge=1, description="new tokens per LLM reply (the paper: 4,096)")
    context_chars: int = Field(2000, ge=200, description="characters of the document the LLM sees around the "
                               "evidence (free mode: from the start)")
    seed: int = Field(0, description="seeds the choice of spans and few-shot examples")


class CheckConfig(BaseModel):
    """Stage 4 (the paper: GPT-4.1-mini says correctness/leakage/has_context Y/N), deterministic on CPU."""

    min_grounding: float = Field(90.0, ge=0, le=100, description="rapidfuzz partial-ratio of the answer in the "
                                 "document (0-100) for it to count as grounded")
    max_answer_overlap: float = Field(0.8, ge=0, le=1, description="share of the answer's tokens found in the "
                                      "question at or above which the answer leaks (spec: >= 0.8)")
    max_answer_similarity: float = Field(0.9, ge=0, le=1, description="MiniLM question-answer cosine above which "
                                         "the answer leaks")
    min_question_words: int = Field(6, ge=1, description="a shorter question lacks the context to stand alone")
    llm_checker: bool = Field(False, description="also ask the LLM the paper's three Y/N questions (capable "
                              "endpoints only; a 270M model cannot judge)")


class DedupConfig(BaseModel):
    """MinHash near-duplicate removal (datasketch), over documents before stage 1 and over QA after stage 4."""

    threshold: float = Field(0.8, gt=0, le=1, description="estimated Jaccard similarity at which two are duplicates")
    num_perm: int = Field(128, ge=16, description="MinHash permutations")
    shingle_words: int = Field(3, ge=1, description="word n-gram size of the shingles")
    seed: int = Field(1, ge=0, le=2**32 - 1, description="seeds the MinHash permutations (datasketch's default: 1)")
    documents: bool = Field(True, description="drop near-duplicate documents before the stages")
    qa: bool = Field(True, description="drop near-duplicate questions after the checks")


class DecontaminationConfig(BaseModel):
    """n-gram overlap with evaluation sets (lm-eval-harness style); the paper ran it after generation."""

    eval_files: list[str] = Field(default_factory=list, description="JSON-lines or text files of evaluation items "
                                  "whose n-grams no QA pair may share")
    ngram: int = Field(13, ge=1, description="n-gram length (lm-eval-harness: 13)")


class PipelineConfig(BaseModel):
    """One pipeline run: corpus -> filter -> identify -> generate -> check -> decontaminate -> dedup."""

    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    identify: IdentifyConfig = Field(default_factory=IdentifyConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    check: CheckConfig = Field(default_factory=CheckConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    decontaminate: DecontaminationConfig = Field(default_factory=DecontaminationConfig)
    llm: str | None = Field(None, description="the LLM spec for paraphrase/free generation (hf:embedded, "
                            "llamacpp:embedded, openai:URL#MODEL); unused by extractive generation")
    embedder: str = Field("minilm", description="the sentence embedder of the filter, domains and leakage check")
    engine: Literal["local", "ray"] = Field("local", description="local: in-process; ray: Ray Data, one actor per "
                                             "model replica")
    workers: int = Field(1, ge=1, description="Ray actors (each holds its own models; threads = cores / workers)")
    ray_address: str | None = Field(None, description="join this Ray cluster (e.g. auto) instead of starting Ray "
                                    "locally [default: local]")
    shard_size: int = Field(16, ge=1, description="documents per shard (the unit of resume)")
    parquet: bool = Field(True, description="also write qa.parquet beside qa.jsonl")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)

    @model_validator(mode="after")
    def _llm_for_mode(self) -> PipelineConfig:
        if self.generate.mode != "extractive" and not self.llm:
            raise ValueError(f"generate.mode={self.generate.mode} needs an LLM: pass --llm SPEC (hf:embedded, "
                             "llamacpp:embedded, openai:URL#MODEL) or use generate.mode=extractive")
        if self.check.llm_checker and not self.llm:
            raise ValueError("check.llm_checker needs an LLM: pass --llm SPEC or turn check.llm_checker off")
        if self.identify.llm_identifier and not self.llm:
            raise ValueError("identify.llm_identifier needs an LLM: pass --llm SPEC or turn identify.llm_identifier off")
        return self


PIPELINE_PRESETS: dict[str, PipelineConfig] = {
    # the run of record: python3.11-doc's 530 HTML pages, extractive generation, deterministic checks
    "record": PipelineConfig(),
    # the same with the embedded Gemma-3-270M paraphrasing each question (llama.cpp, ~50 tokens/s on 2 cores)
    "paraphrase": PipelineConfig(llm="llamacpp:embedded", generate=GenerateConfig(mode="paraphrase")),
    # the demo: the first 48 documents
    "quick": PipelineConfig(corpus=CorpusConfig(max_documents=48), shard_size=8),
    # the paper's stages for a capable served model (spec section 2)
    "paper": PipelineConfig(llm="openai:http://localhost:8000/v1#Qwen/Qwen3-8B",
                            generate=GenerateConfig(mode="free", temperature=1.0, max_tokens=4096),
                            check=CheckConfig(llm_checker=True)),
}


def _record_rl() -> RLConfig:
    # 4 tasks x 8 samples per iteration. LoRA lr 1e-4: about 10x a full-weight GRPO lr (the paper: 5e-6 on 3B), as
    # LoRA needs, at the high end because a few dozen steps from a zero-initialised adapter move little otherwise.
    # Temperature 0.7, not the paper's 1.0: on the record QA Gemma-3-270M sampled a right answer 1 time in 432 at
    # 1.0 (1 of 54 groups with a reward signal) and 10 times at 0.7 (4 of 54 groups)
    return RLConfig(loss_type="grpo", iterations=36, tasks_per_iteration=4, group_size=8, learning_rate=1e-4,
                    micro_batch_size=8, checkpoint_every=4,
                    sampling=SamplingParams(temperature=0.7, max_tokens=16, stop=["\n"]))


# the first line of the closed-book prompt (RL and evaluation) of the run of record
CLOSED_BOOK_INSTRUCTION = "Answer each question about Python with a short answer: a number, a name or a few words."


class TrainConfig(BaseModel):
    """One arm (base, rl or cpt) and seed of RL on a pipeline run's QA vs continued pretraining (CPT) on the same
    documents at equal document tokens (the paper's token convention), scored by closed-book exact match."""

    data: str = Field("runs/webscale/record", description="a pipeline run folder (its QA and documents files)")
    qa_file: str = Field("qa.jsonl", description="the QA records in data (qa_id, doc_id, question, answer, evidence)")
    documents_file: str = Field("documents.jsonl", description="the documents in data (doc_id, text)")
    llm: str = Field("hf:embedded", description="a trainable model spec (hf:embedded, hf:PATH)")
    arm: Literal["base", "rl", "cpt"] = Field("rl", description="base: no training; rl: GRPO with LoRA on the RL "
                                              "QA; cpt: LoRA next-token training on the documents behind them")
    seed: int = Field(0, description="LoRA init, RL task order and sampling, CPT data order (rl.seed is replaced)")
    heldout_fraction: float = Field(0.3, gt=0, lt=1, description="share of documents (by a hash of doc_id) whose "
                                    "QA are held out; the same split for every arm and seed")
    instruction: str = Field(CLOSED_BOOK_INSTRUCTION, min_length=1, description="the first line of every closed-book prompt "
                             "(RL and evaluation); name your corpus's subject")
    shots: int = Field(2, ge=0, description="solved QA (from training documents outside the RL set) before each "
                       "closed-book question")
    train_document_tokens: int = Field(40_000, ge=1, description="RL documents are taken in hash order until their "
                                       "tokens reach this: the equal-token budget CPT reads once")
    max_document_tokens: int = Field(3_000, ge=1, description="longer training documents are left out of RL (and "
                                     "so of CPT), which keeps the equal-token CPT affordable on a CPU")
    unseen_per_document: int = Field(1, ge=0, description="questions of each RL document held back for the 'seen "
                                     "documents, unseen questions' evaluation (documents with more QA than this)")
    max_eval_qa: int = Field(200, ge=1, description="questions evaluated per evaluation set (hash order)")
    decontamination_ngram: int = Field(13, ge=1, description="RL and shot QA whose evidence sentence shares a "
                                       "word n-gram with a held-out QA's are dropped (lm-eval-harness: 13)")
    eval_max_tokens: int = Field(16, ge=1, description="new tokens of a closed-book answer (greedy, one line)")
    eval_batch_size: int = Field(32, ge=1, description="questions per generate call in the evaluation")
    rl: RLConfig = Field(default_factory=_record_rl, description="GRPO settings (rl.seed is replaced by seed; the "
                         "paper: batch 256, lr 5e-6, 16 samples per query, full weights)")
    lora: LoRAConfig = Field(default_factory=lambda: LoRAConfig(r=16, alpha=32, dropout=0.0),
                             description="the adapter both trained arms add (dropout 0: RL rolls out without it)")
    cpt_window_tokens: int = Field(256, ge=2, description="document tokens per CPT sequence (after a BOS prompt)")
    cpt_batch_size: int = Field(4, ge=1, description="CPT windows per optimizer step")
    cpt_learning_rate: float = Field(1e-4, gt=0, description="CPT AdamW learning rate, LoRA (the paper: 1e-5, "
                                     "full weights, batch 256)")
    bf16: bool = Field(True, description="bf16 autocast for generation and training (about 2x faster on a CPU "
                       "with AMX; off: float32)")
    threads: int | None = Field(None, description="torch threads [default: reasonlab --threads, else cores - 1]")
    out: str = Field("runs/webscale", description="the folder of the run directory")
    name: str | None = Field(None, description="the run directory's name [default: <arm>-s<seed>]")
    resume: bool = Field(False, description="reuse a finished run, continue an RL run from its checkpoint")
    overwrite: bool = Field(False, description="delete an existing run directory and start again")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)

    @model_validator(mode="after")
    def _one_segment(self) -> TrainConfig:
        if self.rl.max_segments != 1:
            raise ValueError(f"rl.max_segments={self.rl.max_segments}: a QA episode is one completion, set it to 1")
        return self

    @property
    def run_name(self) -> str:
        return self.name or f"{self.arm}-s{self.seed}"


TRAIN_PRESETS: dict[str, TrainConfig] = {
    # the run of record: 3 seeds x {base, rl, cpt}, jobs=2 of one thread each, measured 35.5 min on 2 cores (one RL
    # iteration 18 s, CPT 94 tokens/s, 227 questions 66 s alone and 130 s beside another job; peak 7.8 GB per job)
    "record": TrainConfig(),
    # a pipeline check in a few minutes per arm: 4 RL iterations, 6,000 document tokens, 32 questions per set
    "quick": TrainConfig(train_document_tokens=6_000, max_eval_qa=32,
                         rl=_record_rl().model_copy(update={"iterations": 4})),
}
