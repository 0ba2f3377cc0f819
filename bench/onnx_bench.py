"""Speed and memory of adapting imported ONNX models (issue 13 item 7).

1. **cnn-b imported vs built-in**: the built-in cnn-b written as ONNX and re-imported,
   against the built-in network: one Adam training step (forward, backward, update),
   batch 64, 28x28x1, 5 classes, one thread, interleaved; ratio imported / built-in.
2. **NumPy vs PyTorch**: the small ResNet and the full ResNet-18 (both from
   ``bench.export_onnx``) at 3x32x32, batch 64: one SGD training step of the imported
   network against the same torch module (BatchNorm in eval mode on both sides: frozen
   statistics, trained affine, as the importer adapts) at the same thread count,
   interleaved; ratio NumPy / PyTorch.  Outputs are compared first.
3. **Peak memory (RSS)** of adapting each with full, last-layers-only (``last:K``) and
   bias-only (``bias``) updates: each in a fresh process that imports the model, runs
   a few Adam steps and reports ``ru_maxrss``; the same process's RSS after import, before
   training, is given beside it.

Needs torch (``pip install torch==2.13.0``), for the models and the PyTorch side only.
Writes ``OUT/report.json`` and ``OUT/README.md``::

    python -m bench.onnx_bench --out docs/results/onnx
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
from threadpoolctl import threadpool_limits

from kernels.optimizers import make_optimizer
from kernels.sparsity import parse_sparsity
from models.nets import build_network
from models.onnx import load_onnx_model, restrict_trainable
from models.onnx.builtin import save_network_onnx
from models.train import Trainer

BATCH = 64
LAST_K = 3


def _rss_mib() -> float:
    """Peak resident memory of this process (MiB): VmHWM, which exec resets (ru_maxrss
    keeps the parent's peak across fork and exec on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _interleaved(fns: Dict[str, callable], repeats: int, steps: int) -> Dict[str, float]:
    """Seconds per call of each function over ``repeats`` interleaved blocks: the median
    (key) and the fastest block (``key + "_min"``: on a shared machine, the least disturbed)."""
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for fn in fns.values():  # warm-up (workspaces, BLAS)
        fn()
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            for _ in range(steps):
                fn()
            times[k].append((time.perf_counter() - t) / steps)
    out = {k: statistics.median(v) for k, v in times.items()}
    out.update({f"{k}_min": min(v) for k, v in times.items()})
    return out


def cnn_b_ratio(repeats: int, steps: int, tmp: Path) -> dict:
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 5, BATCH)
    builtin = build_network("cnn-b", (28, 28, 1), 5, seed=0)
    imported = load_onnx_model(save_network_onnx(builtin, tmp / "cnn-b.onnx"))
    trainers = {k: Trainer(n, make_optimizer("adam", lr=1e-3)) for k, n in
                (("builtin", builtin), ("imported", imported))}
    med = _interleaved({k: (lambda t=t: t.step(x, y, 0, 0.0)) for k, t in trainers.items()}, repeats, steps)
    return {"what": "cnn-b Adam step, batch 64, 28x28x1, 5 classes", "seconds_builtin": med["builtin"],
            "seconds_imported": med["imported"],
            "ratio_imported_to_builtin": med["imported"] / med["builtin"],
            "ratio_imported_to_builtin_min": med["imported_min"] / med["builtin_min"], "goal": "<= 1.1"}


def torch_ratio(name: str, threads: int, repeats: int, steps: int, tmp: Path) -> dict:
    import torch

    from bench.export_onnx import export, make_model

    torch.set_num_threads(threads)
    model = make_model(name, 5, seed=0).eval()
    path = export(model, tmp / f"{name}.onnx")
    net = load_onnx_model(path)
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 5, BATCH)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), torch.from_numpy(y)
    with torch.no_grad():
        ref = model(xt).numpy()
    diff = float(np.max(np.abs(net.forward(x) - ref)) / np.max(np.abs(ref)))
    trainer = Trainer(net, make_optimizer("sgd", lr=1e-3))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def torch_step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()

    med = _interleaved({"numpy": lambda: trainer.step(x, y, 0, 0.0), "torch": torch_step}, repeats, steps)
    return {"model": name, "params": int(net.params.size), "trainable_layers": net.n_layers,
            "threads": threads, "batch": BATCH, "input": "3x32x32", "max_rel_logit_diff": diff,
            "seconds_numpy": med["numpy"], "seconds_torch": med["torch"],
            "ratio_numpy_to_torch": med["numpy"] / med["torch"],
            "seconds_numpy_min": med["numpy_min"], "seconds_torch_min": med["torch_min"],
            "ratio_numpy_to_torch_min": med["numpy_min"] / med["torch_min"]}


def rss_child(path: str, mode: str, steps: int) -> dict:
    """In this (fresh) process: import, then ``steps`` Adam steps under ``mode``; peak RSS."""
    net = load_onnx_model(path)
    scheme = {"full": "dense", "last": f"last:{LAST_K}", "bias": "bias"}[mode]
    net = restrict_trainable(net, scheme)
    probs = parse_sparsity(scheme, net.n_layers)
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 5, BATCH)
    before = _rss_mib()
    trainer = Trainer(net, make_optimizer("adam", lr=1e-3), probs)
    for t in range(steps):
        trainer.step(x, y, t, 0.0)
    return {"mode": mode, "scheme": scheme, "trainable_params": int(net.params.size),
            "peak_rss_mib_after_import": round(before, 1), "peak_rss_mib": round(_rss_mib(), 1)}


def rss(name: str, tmp: Path, steps: int) -> List[dict]:
    from bench.export_onnx import export, make_model

    path = tmp / f"{name}.onnx"
    if not path.exists():
        export(make_model(name, 5, seed=0).eval(), path)
    rows = []
    for mode in ("full", "last", "bias"):
        out = subprocess.run([sys.executable, "-m", "bench.onnx_bench", "--rss-child", str(path), mode,
                              "--steps", str(steps)], capture_output=True, text=True, check=True)
        rows.append(dict(json.loads(out.stdout.strip().splitlines()[-1]), model=name))
    return rows


def markdown(r: dict) -> str:
    c = r["cnn_b"]
    lines = ["# Adapting imported ONNX models: step time and memory", "",
             f"Made by `{r['command']}` on {r['machine']} (Python {r['python']}, NumPy {r['numpy']}, "
             f"torch {r['torch_version']}); {r['threads']} thread(s), batch {BATCH}, interleaved runs, "
             f"median of {r['repeats']} blocks ({r['cnn_b_repeats']} blocks of 20 steps for cnn-b). "
             "Raw numbers: [report.json](report.json).", "",
             "## Imported cnn-b vs built-in cnn-b", "",
             "| step (Adam, batch 64, 28x28x1) | built-in | imported ONNX | ratio of medians "
             "(goal <= 1.1) | ratio of fastest blocks |",
             "|---|---:|---:|---:|---:|",
             f"| median seconds | {c['seconds_builtin'] * 1e3:.2f} ms | "
             f"{c['seconds_imported'] * 1e3:.2f} ms | "
             f"{c['ratio_imported_to_builtin']:.3f} | {c['ratio_imported_to_builtin_min']:.3f} |", "",
             "## NumPy (imported) vs PyTorch CPU, one SGD step at 3x32x32", "",
             "| model | parameters | trainable layers | NumPy (median) | PyTorch (median) | ratio of medians "
             "| ratio of fastest blocks | max rel. logit diff |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for t in r["torch"]:
        lines.append(f"| {t['model']} | {t['params']} | {t['trainable_layers']} "
                     f"| {t['seconds_numpy'] * 1e3:.1f} ms | {t['seconds_torch'] * 1e3:.1f} ms "
                     f"| {t['ratio_numpy_to_torch']:.2f} | {t['ratio_numpy_to_torch_min']:.2f} | "
                     f"{t['max_rel_logit_diff']:.1e} |")
    lines += ["", f"## Peak memory (RSS) of adapting, {r['rss_steps']} Adam steps in a fresh process", "",
              f"`last` updates the last {LAST_K} trainable layers (`--sparsity last:{LAST_K}`); "
              "`bias` only the biases, BatchNorm biases and the classifier (`--sparsity bias`, TinyTL).", "",
              "| model | updates | trainable parameters | RSS after import | peak RSS while adapting |",
              "|---|---|---:|---:|---:|"]
    for m in r["rss"]:
        lines.append(f"| {m['model']} | {m['mode']} | {m['trainable_params']} | "
                     f"{m['peak_rss_mib_after_import']:.0f} MiB | {m['peak_rss_mib']:.0f} MiB |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.onnx_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="write report.json and README.md here")
    ap.add_argument("--models", default="small-resnet,resnet18")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3, help="steps per timed block / per RSS run")
    ap.add_argument("--cnn-b-repeats", type=int, default=15, help="blocks of 20 cnn-b steps per side")
    ap.add_argument("--rss-child", nargs=2, metavar=("MODEL", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_child:
        print(json.dumps(rss_child(args.rss_child[0], args.rss_child[1], args.steps)))
        return 0
    import torch

    names = [m for m in args.models.split(",") if m]
    with tempfile.TemporaryDirectory() as d, threadpool_limits(limits=args.threads):
        tmp = Path(d)
        report = {
            "command": "python -m bench.onnx_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "python": platform.python_version(), "numpy": np.__version__, "torch_version": torch.__version__,
            "threads": args.threads, "repeats": args.repeats, "rss_steps": args.steps,
            "cnn_b_repeats": args.cnn_b_repeats,
            "cnn_b": cnn_b_ratio(args.cnn_b_repeats, 20, tmp),
            "torch": [torch_ratio(n, args.threads, args.repeats, args.steps, tmp) for n in names],
        }
        report["rss"] = [row for n in names for row in rss(n, tmp, args.steps)]
    text = markdown(report)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(json.dumps(report, indent=1))
        (args.out / "README.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
