"""The GPU check in one command: ``python -m bench gpu --out DIR`` (``bench/gpu_check.sh``).

On a machine with a CUDA GPU it runs these parts in order and writes their tables to
``DIR/gpu.md`` (rewritten after each part, so a run cut short keeps what it finished), the
raw figures to ``DIR/gpu.json``, and the logs of the child processes to ``DIR/tests.log``
and ``DIR/main.log``: five files at most (the device tool brings back eight). Databases
and the main job's spec go to a scratch folder.

1. ``tests``: the suite's CUDA tests (``pytest -m cuda``: the micro-batch fitted after real
   out-of-memory errors, AMP with accumulation, workers pinned with CUDA_VISIBLE_DEVICES).
2. ``trainer``: ``bench.trainer --device cuda``: hand loop vs hptune's recipe vs Lightning
   on the built-in tasks and a ResNet-18 on synthetic images (``bench.synthetic``).
3. ``packing``: the same 16 small trials (mnist1d-mlp, random search, deterministic
   order) run 1, 2, 4 and 8 to a GPU by the process executor; trials per minute.
4. ``main``: the README's main job (``examples/mnist1d.yaml``, 2 workers on one GPU) with
   ``training: {fit_micro_batch: true, amp: true}``, its trial budget and time cut down.

Budget: under 8 minutes on one H200 (the parts take about 1, 2.5, 1.5 and 2.5 minutes;
``--quick`` halves the trainer and packing parts). Without a GPU every part is skipped and
the command says so and exits 0. See ``bench/GPU.md`` for how to run it on the project's
GPU machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("tests", "trainer", "packing", "main")
#: Trials per GPU in the packing part, and the trials they share.
PACKINGS = (1, 2, 4, 8)
PACKED_TRIALS = 16
PACKED_EPOCHS = 5
#: The main job's --timeout: no trial starts after it (running ones finish).
MAIN_TIMEOUT = "90s"
#: Where the packed trials train (a CPU smoke test of this module sets "cpu").
DEVICE = "cuda"
#: The CUDA tests: every test marked ``cuda`` under these paths.
CUDA_TEST_PATHS = ("tests/training", "tests/execution/test_process.py")


def gpu_name() -> str | None:
    """The first GPU's name, or None without CUDA."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def run_tests(out: Path, scratch: Path, quick: bool) -> dict[str, Any]:
    """``pytest -m cuda`` in a child process; its summary lines."""
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cuda", "-rs",
        "--timeout", "300", *CUDA_TEST_PATHS,
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    (out / "tests.log").write_text(done.stdout + done.stderr)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else "(no output)"
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return {
        "exit_code": done.returncode,
        "summary": summary,
        "failed": failed,
        "seconds": round(time.perf_counter() - start, 1),
        "table": tests_table(done.returncode, summary, failed),
    }


def tests_table(exit_code: int, summary: str, failed: list[str]) -> str:
    rows = [f"| `pytest -m cuda {' '.join(CUDA_TEST_PATHS)}` | {summary} | {exit_code} |"]
    rows += [f"| {line} | | |" for line in failed]
    return "\n".join(["| command | result | exit code |", "|---|---|---|", *rows])


def run_trainer(out: Path, scratch: Path, quick: bool) -> dict[str, Any]:
    """``bench.trainer --device cuda``: every trainer on the GPU."""
    from bench import trainer

    argv = ["--device", "cuda", "--repeats", "2", "--json", str(out / "trainer.json")]
    argv += ["--epochs", "3" if quick else "5"]
    if quick:
        argv.append("--quick")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = trainer.main(argv)
    return {"exit_code": code, "table": printed.getvalue().strip()}


def run_packing(out: Path, scratch: Path, quick: bool) -> dict[str, Any]:
    """The same trials run ``k`` to a GPU, for each ``k`` of :data:`PACKINGS`."""
    rows = []
    for per_gpu in PACKINGS[:2] if quick else PACKINGS:
        rows.append(pack(per_gpu, scratch))
        print(packing_row(rows[-1]), file=sys.stderr, flush=True)
    return {"rows": rows, "table": packing_table(rows)}


def _executor(per_gpu: int, device: str) -> Any:
    """``per_gpu`` process workers, all on GPU 0 (or on the CPU for ``device="cpu"``)."""
    from hptune.execution import ProcessExecutor

    if device == "cpu":
        return ProcessExecutor(per_gpu, devices="cpu")
    return ProcessExecutor(per_gpu, devices=[0], trials_per_device=per_gpu)


def start_seconds(per_gpu: int, device: str = DEVICE) -> float:
    """How long ``per_gpu`` workers on GPU 0 take to start (spawn, import torch, and for a
    shared GPU the CUDA context their memory cap creates)."""
    executor = _executor(per_gpu, device)
    start = time.perf_counter()
    executor.start(lambda number, step, value: False)
    seconds = time.perf_counter() - start
    executor.shutdown()
    return seconds


def pack(per_gpu: int, scratch: Path, device: str = DEVICE) -> dict[str, Any]:
    """Run :data:`PACKED_TRIALS` mnist1d-mlp trials with ``per_gpu`` workers on GPU 0
    (``device="cpu"``: on the CPU, for a test of everything but the GPU).

    Random search with a seed, asked all at once (``deterministic=True`` with a batch of
    all the trials), no pruning: the same configs for every ``per_gpu``, every worker busy,
    every trial trained in full.
    """
    import hptune
    from hptune.runner import TaskObjective
    from hptune.training.options import TrainingOptions

    space = {"lr": hptune.loguniform(1e-3, 1e-1), "batch_size": hptune.choice(32, 128)}
    study = hptune.create_study(
        space, name=f"pack-{per_gpu}", storage=f"sqlite:///{scratch / f'pack-{per_gpu}.db'}",
        strategy="random", pruner="none", direction="maximize", seed=0, epochs=PACKED_EPOCHS,
    )  # fmt: skip
    objective = TaskObjective(
        task="mnist1d-mlp", epochs=PACKED_EPOCHS, options=TrainingOptions(device=device)
    )
    started = start_seconds(per_gpu, device)
    executor = _executor(per_gpu, device)
    start = time.perf_counter()
    study.optimize(
        objective, n_trials=PACKED_TRIALS, executor=executor, deterministic=True,
        batch_size=PACKED_TRIALS,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    records = study.trials
    states = [record.state for record in records]
    return {
        "per_gpu": per_gpu,
        "trials": len(states),
        "complete": states.count("COMPLETE"),
        "seconds": round(seconds, 1),
        "start_seconds": round(started, 1),
        "trials_per_min": round(60 * len(states) / seconds, 1),
        "trials_per_min_started": round(60 * len(states) / max(seconds - started, 1e-9), 1),
        "trial_seconds": round(sum(r.duration or 0.0 for r in records), 1),
        "best": study.best_value if "COMPLETE" in states else None,
    }


def packing_row(row: dict[str, Any]) -> str:
    best = "-" if row["best"] is None else f"{row['best']:.3f}"
    return (
        f"| {row['per_gpu']} | {row['complete']}/{row['trials']} | {row['seconds']:.1f} | "
        f"{row['start_seconds']:.1f} | {row['trials_per_min']:.1f} | "
        f"{row['trials_per_min_started']:.1f} | {row['trial_seconds']:.1f} | {best} |"
    )


def packing_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| trials per GPU | complete | seconds | workers' start (s) | trials/min | trials/min "
        "after the start | sum of trial durations (s) | best val acc |"
    )
    return "\n".join([head, "|---|---|---|---|---|---|---|---|", *map(packing_row, rows)])


def main_job_spec(scratch: Path) -> Path:
    """``examples/mnist1d.yaml`` with ``training: {fit_micro_batch: true, amp: true}``."""
    from hptune.spec import parse_spec

    text = (ROOT / "examples" / "mnist1d.yaml").read_text()
    text += "training: {fit_micro_batch: true, amp: true}\n"
    parse_spec(text, "main-gpu.yaml")  # a spec error here, not in the child process
    path = scratch / "main-gpu.yaml"
    path.write_text(text)
    return path


def run_main(out: Path, scratch: Path, quick: bool) -> dict[str, Any]:
    """``python -m hptune run`` on :func:`main_job_spec` in a child process."""
    spec = main_job_spec(scratch)
    command = [
        sys.executable, "-m", "hptune", "run", str(spec), "--name", "mnist1d-mlp-gpu",
        "--storage", f"sqlite:///{scratch / 'main.db'}", "--trials", "20" if quick else "40",
        "--timeout", MAIN_TIMEOUT,
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (out / "main.log").write_text(done.stdout + done.stderr)
    lines = done.stdout.strip().splitlines()
    shown = lines if len(lines) <= 30 else [*lines[:4], "...", *lines[-25:]]
    tail = "\n".join(shown) or done.stderr.strip()[-2000:]
    table = textwrap.dedent(f"""\
        `python -m hptune run examples/mnist1d.yaml` + `training: {{fit_micro_batch: true,
        amp: true}}`, `{" ".join(command[5:])}`: exit code {done.returncode}, {seconds:.0f} s.

        ```
        {{tail}}
        ```""").replace("{tail}", tail)
    return {"exit_code": done.returncode, "seconds": round(seconds, 1), "table": table}


RUNNERS: dict[str, Callable[[Path, Path, bool], dict[str, Any]]] = {
    "tests": run_tests,
    "trainer": run_trainer,
    "packing": run_packing,
    "main": run_main,
}


def report(results: dict[str, Any], device: str | None, started: str) -> str:
    """The whole check as Markdown (what ``bench/RESULTS.md``'s GPU section takes)."""
    parts = [f"# GPU check\n\nDevice: {device or 'none'}. Started {started}."]
    for name, result in results.items():
        seconds = result.get("part_seconds")
        took = f" ({seconds:.0f} s)" if seconds is not None else ""
        parts.append(f"## {name}{took}\n\n{result.get('table', result.get('error', ''))}")
    return "\n\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench gpu``."""
    parser = argparse.ArgumentParser(prog="python -m bench gpu", description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu"))
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--quick", action="store_true", help="fewer epochs and packings")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    device = gpu_name()
    if device is None:
        message = "no CUDA GPU here: the GPU check is skipped (every part needs one)."
        print(message)
        (out / "gpu.md").write_text(f"# GPU check\n\nSkipped on {started}: {message}\n")
        return 0
    print(f"GPU check on {device}, tables in {out}", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="hptune-gpu-"))
    results: dict[str, Any] = {}
    for name in args.parts:
        start = time.perf_counter()
        try:
            results[name] = RUNNERS[name](out, scratch, args.quick)
        except Exception as exc:  # one part failing must not lose the others' tables
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        results[name]["part_seconds"] = time.perf_counter() - start
        print(f"{name}: {results[name]['part_seconds']:.0f} s", flush=True)
        (out / "gpu.md").write_text(report(results, device, started))
        (out / "gpu.json").write_text(json.dumps(results, indent=1, default=str))
    print(report(results, device, started))
    failed = [n for n, r in results.items() if "error" in r or r.get("exit_code", 0) != 0]
    return 1 if failed else 0


if __name__ == "__main__":  # spawned workers re-import this module: work under the guard
    sys.exit(main())
