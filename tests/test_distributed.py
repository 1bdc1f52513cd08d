"""train_world_model under ``accelerate launch`` with two CPU processes (gloo).

Note: ``accelerate launch --cpu --num_processes 2`` starts ONE process in accelerate 1.x (``--cpu``
takes the simple launcher; several CPU processes need mpirun there). Two CPU processes come from
``--multi_gpu --num_processes 2`` (torchrun) with ``ACCELERATE_USE_CPU=true``, which makes the
Accelerator choose the CPU and the gloo backend.
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from diffaif.model import WorldModel

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "train_distributed.py"
STEPS = 4


def _launchable() -> str | None:
    """Why two processes cannot be launched here, or None."""
    if not torch.distributed.is_available():
        return "torch.distributed is not available in this torch build"
    if not torch.distributed.is_gloo_available():
        return "torch.distributed has no gloo backend in this build"
    try:
        import accelerate.commands.launch  # noqa: F401
    except ImportError as err:
        return f"accelerate's launcher cannot be imported: {err}"
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
    except OSError as err:
        return f"cannot open a local TCP socket for the process group rendezvous: {err}"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    reason = _launchable()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1",
           "HF_HOME": str(out / "hf"),  # no user accelerate config file
           "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)}
    for attempt in range(2):  # a port taken between choosing and binding it: once more
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), str(SCRIPT), "--out", str(out), "--steps", str(STEPS)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=ROOT)
        if proc.returncode == 0 or "address already in use" not in (proc.stdout + proc.stderr).lower():
            break
    assert proc.returncode == 0, f"accelerate launch failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    ranks = [json.loads((out / "ranks" / f"rank{i}.json").read_text()) for i in range(2)]
    return out, ranks


def test_two_processes_ran_with_gloo(launched):
    _, ranks = launched
    assert [r["process_index"] for r in ranks] == [0, 1]
    assert all(r["num_processes"] == 2 and r["backend"] == "gloo" for r in ranks)
    assert all(len(r["batches"]) == STEPS for r in ranks)


def test_each_process_draws_different_batches(launched):
    _, (rank0, rank1) = launched
    for b0, b1 in zip(rank0["batches"], rank1["batches"]):
        assert b0["x0"] != b1["x0"]


def test_gradients_are_synchronised(launched):
    _, (rank0, rank1) = launched
    assert rank0["model_digest"] == rank1["model_digest"]


def test_main_process_wrote_the_model(launched):
    out, _ = launched
    files = json.loads((out / "ranks" / "files.json").read_text())
    assert {"checkpoint.pt", "model/world_model.json", "config.yaml", "encoding.json", "metrics.jsonl"} <= set(files)
    model = WorldModel.load(out / "run" / "model")
    assert model.length == 6
    assert not list((out / "run").glob(".*tmp*"))  # no half-written model or checkpoint left behind


def test_metrics_written_once_per_step(launched):
    out, _ = launched
    steps = [json.loads(line)["step"] for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))


def test_lr_schedule_advances_once_per_step(launched):
    """Cosine, no warm-up, 4 steps: lr after step k is lr0 * (1 + cos(pi k / 4)) / 2, as with one process."""
    import math

    out, _ = launched
    records = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    lr0 = 1e-3
    for record in records:
        expected = lr0 * 0.5 * (1 + math.cos(math.pi * record["step"] / STEPS))
        assert record["lr"] == pytest.approx(expected, abs=1e-9)
