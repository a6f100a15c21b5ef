"""`memagent train` under two gloo processes on CPU, as `torchrun --nproc_per_node 2` or `accelerate launch` start it:
each rank rolls out its own task, the LoRA adapter ends identical on both, rank 0 alone writes the run (one metrics
line over both ranks' episodes, the checkpoint, the merged model), and an error on rank 0 stops both ranks."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from reasonlab.runs import Run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

WORLD_SIZE = 2
TIMEOUT_S = 240  # a rank that skips a collective fails the test here instead of blocking the suite


def _config(model_dir: str):
    from reasonlab.systems.memagent.config import TRAIN_PRESETS

    # the smoke preset (2 tasks per iteration, 2 episodes each, 2 turns): one task per rank
    smoke = TRAIN_PRESETS["smoke"]
    return smoke.model_copy(update={"policy": f"hf:{model_dir}", "torch_threads": 1,
                                    "rl": {**smoke.rl, "iterations": 1, "beta": 0.04},
                                    "lora": {"r": 4, "alpha": 8, "dropout": 0.0}})


def worker(rank: int, port: int, model_dir: str, out: str) -> None:
    """One rank: the training run, then (into a run that exists) the same command without --resume."""
    from reasonlab.errors import UserError
    from reasonlab.systems.memagent.training import train

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), HF_HUB_OFFLINE="1")
    torch.set_num_threads(1)
    config = _config(model_dir)
    captured: dict = {}
    import reasonlab.train.rl as rl

    rl_train = rl.train

    def recording_train(rl_config, policy, *args, **kwargs):  # memagent's train calls rl.train: keep what it did
        captured["history"] = rl_train(rl_config, policy, *args, **kwargs)
        captured["adapter"] = {n: p.detach().clone() for n, p in policy.module.named_parameters() if p.requires_grad}
        return captured["history"]

    rl.train = recording_train
    train(config, out, "ddp")
    try:
        train(config, out, "ddp")
        refused = ""
    except UserError as err:
        refused = str(err)
    torch.save({"adapter": captured["adapter"], "history": captured["history"], "refused": refused},
               Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ranks(tiny_gemma_dir, tmp_path_factory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("memagent-ddp")
    context = mp.start_processes(worker, args=(_free_port(), str(tiny_gemma_dir), str(out)), nprocs=WORLD_SIZE,
                                 join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the two memagent train processes did not finish within {TIMEOUT_S} s")
    return out, [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD_SIZE)]


def test_both_ranks_end_with_the_same_adapter_and_the_same_metrics(ranks) -> None:
    _, (first, second) = ranks
    assert first["adapter"] and set(first["adapter"]) == set(second["adapter"])
    assert all("lora_" in name for name in first["adapter"])
    for name, value in first["adapter"].items():
        assert torch.equal(value, second["adapter"][name]), name
    timing = {"seconds", "rollout_seconds", "train_seconds", "tokens_per_second"}
    assert [{k: v for k, v in m.items() if k not in timing} for m in first["history"]] == [
        {k: v for k, v in m.items() if k not in timing} for m in second["history"]]
    (metrics,) = first["history"]
    assert metrics["episodes"] == 2 * 2  # both ranks' groups: one task x 2 episodes each


def test_rank_zero_alone_writes_the_run_and_the_merged_model(ranks, tiny_gemma_dir) -> None:
    from safetensors.torch import load_file

    out, _ = ranks
    run = Run.open(out / "ddp")
    assert [m["iteration"] for m in run.metrics()] == [0]  # one line, not one per rank
    assert (run.checkpoint_dir / "rl_state.pt").is_file() and (out / "ddp" / "summary.json").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["ddp", "rank0.pt", "rank1.pt"]  # no stray folders
    model = load_file(out / "ddp" / "model" / "model.safetensors")
    assert set(model) == set(load_file(tiny_gemma_dir / "model.safetensors"))  # the adapter merged in


def test_an_error_on_rank_zero_stops_every_rank(ranks) -> None:
    _, (first, second) = ranks
    assert "already exists: pass --resume" in first["refused"]
    assert "rank 0 could not open the run" in second["refused"]


def test_the_documented_torchrun_command_trains_on_two_processes(tiny_gemma_dir, tmp_path) -> None:
    """docs/memagent.md: `torchrun --nproc_per_node N "$(which reasonlab)" memagent train ...`."""
    import shutil
    import subprocess
    import sys

    reasonlab = shutil.which("reasonlab", path=str(Path(sys.executable).parent))
    assert reasonlab is not None, "the reasonlab command is not installed beside this Python"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(_free_port()), reasonlab, "memagent", "train", "--policy", f"hf:{tiny_gemma_dir}",
               "--set", "rl.iterations=1", "--set", "lora.r=4", "--set", "torch_threads=1",
               "--out", str(tmp_path), "--name", "t"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("1 iterations; last reward") == 2  # both ranks finish
    (metrics,) = Run.open(tmp_path / "t").metrics()
    assert metrics["episodes"] == 4 and (tmp_path / "t" / "model" / "model.safetensors").is_file()
