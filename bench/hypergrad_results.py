"""``python -m bench.hypergrad_results DIR``: the per-task summary of the hypergradient
comparison from its per-seed ``bench compare`` reports (``DIR/<task>-<model>/seed<k>/report.json``).

Writes ``DIR/summary.json``, ``DIR/summary.md`` (per task and arm: final accuracy,
training joules and tuning joules, mean and std over seeds) and, matplotlib permitting,
``DIR/<task>-<model>/schedule-seed<k>.png`` (the tuned schedule per layer over the
steps) and ``DIR/meta-loss.png`` (validation loss per meta-step).  Reads only the
reports: nothing is re-run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from agent.tune import plot_schedule

ARMS = ("hypergrad", "momentum", "halo")


def _ms(values: List[float], scale: float = 1.0, digits: int = 2) -> str:
    a = np.asarray(values, dtype=float) * scale
    sd = a.std(ddof=1) if a.size > 1 else 0.0
    return f"{a.mean():.{digits}f} ± {sd:.{digits}f}"


def collect(root: Path) -> Dict[str, Any]:
    """Per task folder: the seeds' reports, summarised per arm."""
    out: Dict[str, Any] = {}
    for task_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        reports = [json.loads(f.read_text()) for f in sorted(task_dir.glob("seed*/report.json"))]
        if not reports:
            continue
        arms: Dict[str, Any] = {}
        for arm in ARMS:
            rows = [r["optimizers"][arm] for r in reports if arm in r["optimizers"]]
            if not rows:
                continue
            runs = [row["runs"][0] for row in rows]
            arms[arm] = {
                "seeds": [run["seed"] for run in runs],
                "final_accuracy": [run["final_accuracy"] for run in runs],
                "training_joules": [run["joules"] for run in runs],
                "tuning_joules": [row["tuning_joules"] for row in rows],
                "lr": [row["lr"] for row in rows],
                "tuning_runs": rows[0].get("tuning_runs"),
            }
        r0 = reports[0]
        tuned = [r["optimizers"]["hypergrad"]["runs"][0] for r in reports
                 if "hypergrad" in r["optimizers"]]
        hist = [run["tuning"]["history"] for run in tuned]
        meta_val_loss = [[h.get("val_loss") for h in hs] for hs in hist]
        best = [int(np.nanargmin([np.nan if v is None else v for v in losses]))
                for losses in meta_val_loss]
        out[task_dir.name] = {
            "task": r0["task"], "model": r0["model"], "steps": r0["steps"],
            "estimated": r0["estimated"], "energy_source": r0["energy_source"],
            "energy_profile": r0["energy_profile"],
            "initial_accuracy": r0["optimizers"]["momentum"]["runs"][0]["initial_accuracy"],
            "commands": [r.get("command") for r in reports], "arms": arms,
            "schedules": [run["schedule"] for run in tuned],
            "meta_val_loss": meta_val_loss, "best_meta_step": best,
        }
        if "hypergrad" in arms:  # joules spent up to the meta-step whose schedule was kept
            arms["hypergrad"]["joules_to_chosen"] = [h[k]["joules"] for h, k in zip(hist, best)]
    return out


def markdown(summary: Dict[str, Any]) -> str:
    lines = ["| task / model | arm | seeds | final accuracy % | training J | tuning J per seed | "
             "tuning J / grid's | tuning J / training J | lr (grid choice per seed) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in summary.values():
        grid = np.mean(s["arms"]["momentum"]["tuning_joules"]) if "momentum" in s["arms"] else None
        for arm, a in s["arms"].items():
            tj = [t for t in a["tuning_joules"] if t is not None]
            ratio = f"{np.mean(tj) / grid:.2f}" if tj and grid else "-"
            runs = f"{np.mean(tj) / np.mean(a['training_joules']):.1f}" if tj else "-"
            lrs = ", ".join(f"{v:g}" for v in a["lr"]) if arm == "momentum" else "-"
            lines.append(f"| {s['task']} / {s['model']} | {arm} | {len(a['seeds'])} | "
                         f"{_ms(a['final_accuracy'], 100)} | {_ms(a['training_joules'])} | "
                         f"{_ms(tj) if tj else 'not tuned'} | {ratio} | {runs} | {lrs} |")
    lines += ["", "| task / model | meta-step of the kept schedule, per seed | tuning J up to it "
                  "(hindsight) | its share of the tuning J |", "|---|---|---|---|"]
    for s in summary.values():
        hg = s["arms"].get("hypergrad")
        if hg:
            share = np.mean(hg["joules_to_chosen"]) / np.mean(hg["tuning_joules"])
            lines.append(f"| {s['task']} / {s['model']} | "
                         f"{', '.join(str(k + 1) for k in s['best_meta_step'])} | "
                         f"{_ms(hg['joules_to_chosen'])} | {share:.2f} |")
    return "\n".join(lines) + "\n"


def plots(summary: Dict[str, Any], root: Path) -> List[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    for name, s in summary.items():
        for sched in s["schedules"]:
            path = plot_schedule(sched, root / name / f"schedule-seed{sched['seed']}.png")
            if path:
                made.append(path)
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name, s in summary.items():
        for k, losses in enumerate(s["meta_val_loss"]):
            ys = [np.nan if v is None else v for v in losses]
            ax.plot(range(1, len(ys) + 1), ys, marker="o", label=f"{name} seed {k}" if len(
                s["meta_val_loss"]) > 1 else name)
    ax.set_xlabel("meta-step")
    ax.set_ylabel("validation loss after T steps (nats)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(root / "meta-loss.png", dpi=110)
    plt.close(fig)
    made.append(str(root / "meta-loss.png"))
    return made


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    root = Path(args[0] if args else "docs/results/hypergrad")
    summary = collect(root)
    (root / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (root / "summary.md").write_text(markdown(summary))
    made = plots(summary, root)
    print(markdown(summary))
    print("wrote " + ", ".join([str(root / "summary.json"), str(root / "summary.md")] + made))
    return 0


if __name__ == "__main__":
    sys.exit(main())
