"""The same training script under torchrun: 2 gloo processes with batch B/2 each == 1 process with batch B."""

import os
import socket
import subprocess
import sys

import pytest
import torch
import yaml

from reasonlab.systems.trm.config import TRMTrainConfig
from reasonlab.systems.trm.training import load_checkpoint, train

CONFIG = dict(
    task="sudoku", size=4, givens=6, train_size=32, val_size=8, test_size=8, mixer="attention", hidden_size=16,
    num_heads=2, n=2, T=2, n_sup=2, prefix_len=1, ffn_multiple=8, batch_size=8, lr=1e-2, warmup_steps=1,
    weight_decay=0.1, ema=0.9, max_steps=4, eval_every=4, checkpoint_every=4, log_every=1, augment=False,
    halt_exploration=0.0, progress=False, device="cpu", threads=1,
)


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    single = train(TRMTrainConfig(**CONFIG, out=str(tmp_path), name="single"))
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(yaml.safe_dump({**CONFIG, "out": str(tmp_path), "name": "ddp"}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
               "-m", "reasonlab.systems.trm.training", "--config", str(cfg)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    a = load_checkpoint(single / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    assert b["train_config"]["batch_size"] == 8 and len(b["stream"]) == 2
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], atol=2e-5, rtol=1e-4, msg=key)
    summary = yaml.safe_load((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["train_steps"] == 4
    assert summary["test_count"] == 8  # each rank scored 4 test puzzles; the counts are summed
