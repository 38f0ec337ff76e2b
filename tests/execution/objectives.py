"""Objectives that worker processes import by reference (they must be top level).

Each takes ``(config, trial)`` like any hptune objective and returns a float.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

import torch

#: Incremented at each call: a worker that is reused keeps counting.
CALLS = 0


def double(config, trial):
    return config["x"] * 2


def reporting(config, trial):
    """Reports ``step * x`` for steps 0..4; returns ``x``."""
    for step in range(5):
        trial.report(step, step * config["x"])
    return config["x"]


def pid(config, trial):
    return os.getpid()


def calls(config, trial):
    global CALLS
    CALLS += 1
    return CALLS


def torch_threads(config, trial):
    return torch.get_num_threads()


def env_number(config, trial):
    return float(os.environ[config["var"]])


def visible_devices(config, trial):
    """1.0 when CUDA_VISIBLE_DEVICES is set to the empty string (GPUs hidden), else 0.0."""
    return float(os.environ.get("CUDA_VISIBLE_DEVICES") == "")


def train_tiny(config, trial):
    """A real (tiny) torch training run: least squares by SGD; returns the final loss."""
    torch.manual_seed(trial.seed)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    w = torch.zeros(3, requires_grad=True)
    opt = torch.optim.SGD([w], lr=config["lr"])
    for epoch in range(3):
        for _ in range(20):
            opt.zero_grad()
            loss = ((x @ w - y) ** 2).mean()
            loss.backward()
            opt.step()
        trial.report(epoch, loss.item())
    return loss.item()


def sleep(config, trial):
    trial.report(0, 0.0)
    time.sleep(config.get("seconds", 60))
    return 0.0


def keyboard_interrupt(config, trial):
    raise KeyboardInterrupt


def sigkill(config, trial):
    trial.report(0, 1.0)
    os.kill(os.getpid(), signal.SIGKILL)


def segfault(config, trial):
    ctypes.string_at(0)  # reads address 0: SIGSEGV


def exit_3(config, trial):
    os._exit(3)


def out_of_memory(config, trial):
    bytearray(1 << 62)  # 4 EiB: no allocator grants it, Python raises MemoryError


def unpicklable_attr(config, trial):
    trial.set_attr("lock", __import__("threading").Lock())
    return 1.0


def unseeded(config, trial):
    """Draws from every global generator without touching ``trial.seed``, and sums enough
    numbers that the thread count could show in the last bits."""
    import random

    import numpy as np

    noise = torch.randn(200_000, dtype=torch.float32).sum().item()
    return noise + random.random() + float(np.random.rand()) + config["x"]


def flaky_worker_main(conn, env, *args):
    """A worker that dies while starting as many times as the file named by
    ``HPTUNE_TEST_FLAKY`` still counts (one death per start), then starts for real."""
    path = env["HPTUNE_TEST_FLAKY"]
    with open(path) as f:
        left = int(f.read() or 0)
    if left > 0:
        with open(path, "w") as f:
            f.write(str(left - 1))
        os._exit(3)
    from hptune.execution._worker import worker_main

    worker_main(conn, env, *args)


def corrupting(config, trial):
    """Writes garbage over the middle of the SQLite file named by ``HPTUNE_TEST_DB`` when
    trial 3 runs (after moving every page into it from the write-ahead log): the study's
    storage is corrupt from then on, as after a disk fault."""
    import sqlite3

    if trial.number == 3:
        path = os.environ["HPTUNE_TEST_DB"]
        con = sqlite3.connect(path)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.seek(4096)
            f.write(b"\xa5" * (size - 8192))
    return config["x"]


def constant(config, trial):
    return 1.0


def cuda_facts(config, trial):
    """What the worker's CUDA sees: its visible GPUs, and its allocator's cap (attrs)."""
    trial.set_attr("visible", os.environ.get("CUDA_VISIBLE_DEVICES"))
    trial.set_attr("device_count", torch.cuda.device_count())
    get_fraction = getattr(torch.cuda, "get_per_process_memory_fraction", None)
    trial.set_attr("fraction", get_fraction(0) if get_fraction is not None else None)
    time.sleep(config.get("hold_s", 0.0))  # so that packed trials overlap
    return float(torch.cuda.current_device())
