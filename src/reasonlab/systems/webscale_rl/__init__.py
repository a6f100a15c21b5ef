"""Webscale-RL (arXiv 2510.06499): pretraining documents become verifiable question-answer pairs (a self-contained
question, a short answer extracted from the document) that RL trains on with a binary reward. Stages: filter ->
domain and personas -> one QA per persona -> checks (grounded, no leakage, self-contained) -> decontamination ->
near-duplicate removal, run in-process or on Ray Data with resume by shard.

    from reasonlab.systems.webscale_rl import PIPELINE_PRESETS, run_pipeline

    config = PIPELINE_PRESETS["quick"]
    run_dir = run_pipeline(config, "runs/webscale", "quick")   # qa.jsonl, qa.parquet, report.json

Modules: records (the record dicts), config (presets), corpus (folders, HTML, JSONL, Debian packages; bad inputs
skipped with a reason), filtering, identify, generation and prompts (extractive, paraphrase, free), checks, dedup
(MinHash), decontamination (n-grams), pipeline and engines (local, Ray), evaluation (the report, agreement with hand
labels), inspection, reward, environment and training (GRPO vs continued pretraining at equal tokens), experiment.
"""

from reasonlab.systems import lazy_exports

EXPORTS = {
    "records": ["STAGES", "StageOutput", "make_document", "make_qa", "rejection"],
    "config": ["DOMAINS", "PIPELINE_PRESETS", "TRAIN_PRESETS", "CheckConfig", "CorpusConfig", "DecontaminationConfig",
               "DedupConfig", "FilterConfig", "GenerateConfig", "IdentifyConfig", "PipelineConfig", "TrainConfig"],
    "corpus": ["html_text", "read_corpus", "resolve_input"],
    "filtering": ["InformativenessScorer", "boilerplate_ratio", "filter_stage"],
    "identify": ["PERSONAS", "DomainClassifier", "identify_stage", "llm_identify"],
    "generation": ["extract_candidates", "generate_stage", "llm_check"],
    "checks": ["annotate_checks", "check_qa", "check_stage", "grounding_score", "normalize_answer", "passes",
               "rejection_reason"],
    "dedup": ["NearDuplicateIndex", "dedup_stage"],
    "decontamination": ["NgramIndex", "decontaminate_stage"],
    "reward": ["closed_book_accuracy", "exact_match_reward", "extract_answer"],
    "environment": ["QAEnvironment"],
    "training": ["compare", "split_qa", "summarize_comparison", "train"],
    "pipeline": ["Models", "load_models", "process_shard", "run_pipeline"],
    "engines": ["run_local", "run_ray", "threads_per_worker"],
    "evaluation": ["domain_entropy", "label_agreement", "pipeline_report"],
    "inspection": ["filter_records", "load_run_records", "sample_records"],
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(name for names in EXPORTS.values() for name in names)
