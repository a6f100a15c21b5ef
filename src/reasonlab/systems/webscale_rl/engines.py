"""The two executors of the same stages: `run_local` (in this process, shard after shard) and `run_ray` (Ray Data:
the pending shards become a dataset, an actor pool of `workers` actors each holding its own models maps them with
`map_batches`, threads per actor = cores / actors). In both the driver writes each shard's file as soon as the
shard is done and calls `report(shard, summary)`, so progress, resume and outputs are the same whichever engine
ran (a killed local run can resume on Ray, and the other way round).

On a cluster, `ray_address` (e.g. `auto`) joins it instead of starting Ray locally; each actor loads the LLM spec
it is given (`openai:URL#MODEL` for a vLLM server per node, spec section 8).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.systems.webscale_rl.config import PipelineConfig
from reasonlab.systems.webscale_rl.records import Record

__all__ = ["run_local", "run_ray", "threads_per_worker"]

Work = Sequence[tuple[int, list[Record]]]
Report = Callable[[int, dict[str, Any]], None]


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """cores / actors, at least one (spec section 9)."""
    from reasonlab.threads import current_threads

    cores = cores if cores is not None else current_threads()
    return max(1, cores // max(1, workers))


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    return {"shard": result["shard"], "documents": sum(c[0] for s, c in result["counts"].items() if s == "filter"),
            "qa": len(result["qa"])}


def run_local(work: Work, config: PipelineConfig, run_dir: Path, report: Report, models: Any = None) -> None:
    """Every pending shard in this process, with one set of models."""
    from reasonlab.systems.webscale_rl.pipeline import load_models, process_shard, write_shard

    models = models if models is not None else load_models(config)
    for shard, documents in work:
        result = process_shard(documents, config, models, shard)
        write_shard(run_dir, result)
        report(shard, _summary(result))


class ShardWorker:
    """One Ray actor: loads the models once, then runs `process_shard` on each shard it is handed."""

    def __init__(self, config_json: str, threads: int) -> None:
        from reasonlab.systems.webscale_rl.pipeline import load_models
        from reasonlab.threads import configure_threads

        configure_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        self.config = PipelineConfig.model_validate_json(config_json)
        self.models = load_models(self.config)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        """The shard results as JSON; the driver writes them, so the run folder need not be on a shared disk."""
        from reasonlab.systems.webscale_rl.pipeline import process_shard

        results = [json.dumps(process_shard(json.loads(documents), self.config, self.models, int(shard)))
                   for shard, documents in zip(batch["shard"], batch["documents"], strict=True)]
        return {"result": results}


@contextlib.contextmanager
def _native_stderr_silenced(enabled: bool) -> Iterator[None]:
    """File descriptor 2 to /dev/null while Ray's C++ core starts (it prints notices such as "Token
    authentication is enabled" there, past Python's logging); Python exceptions still propagate."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _start_ray(config: PipelineConfig) -> bool:
    """Start (or join) Ray quietly; returns whether we started it (and so must shut it down)."""
    try:
        import ray
    except ImportError:
        raise UserError("engine=ray needs Ray Data: pip install 'reasonlab[ray]' (or 'ray[data]'), or use "
                        "--engine local") from None
    import logging

    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
                               "configure_logging": False}
    quiet = os.environ.get("REASONLAB_QUIET", "1") != "0"  # `reasonlab --verbose` keeps Ray's own messages
    with _native_stderr_silenced(quiet):
        if config.ray_address:
            ray.init(address=config.ray_address, **options)
        else:
            ray.init(num_cpus=max(config.workers, threads_per_worker(1)), **options)
    if quiet:
        for name in ("ray", "ray.data"):  # "progress bars disabled", "dataset ... finished in"
            logging.getLogger(name).setLevel(logging.ERROR)
    return True


def _no_restarts() -> dict[str, Any]:
    return {"max_restarts": 0}


def run_ray(work: Work, config: PipelineConfig, run_dir: Path, report: Report) -> None:
    """Every pending shard through a Ray Data actor pool of `config.workers` actors."""
    import ray
    import ray.data

    from reasonlab.systems.webscale_rl.pipeline import write_shard

    started = _start_ray(config)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        items = [{"shard": shard, "documents": json.dumps(documents)} for shard, documents in work]
        threads = threads_per_worker(config.workers)
        with warnings.catch_warnings():
            # Ray 2.60 marks ray_remote_args_fn deprecated but has no other way to set max_restarts
            warnings.simplefilter("ignore", DeprecationWarning)
            dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
                ShardWorker,
                fn_constructor_args=(config.model_dump_json(), threads),
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=config.workers),
                num_cpus=1,
                # a crashed actor is not restarted (its constructor arguments may be gone, ray#53727): the run
                # stops, and --resume picks up at the first unfinished shard
                ray_remote_args_fn=_no_restarts,
            )
        for row in dataset.iter_rows():
            result = json.loads(row["result"])
            write_shard(run_dir, result)
            report(int(result["shard"]), _summary(result))
    finally:
        if started:
            ray.shutdown()
