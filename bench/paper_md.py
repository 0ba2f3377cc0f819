"""Markdown of ``bench paper``: HALO-style tables (accuracy, loss and energy at fixed
iteration counts) and the sparsity ablation, with how they were made."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from bench.markdown import at_grid_edge, energy_label, fmt, header_lines, main_table, ms
from bench.metrics import mean_std, point_at_step


def _k(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def at_steps(runs: Sequence[Dict[str, Any]], step: int, key: str, scale: float = 1.0
             ) -> Dict[str, Any]:
    """Mean and std over runs of ``key`` of the point evaluated at ``step`` (runs that
    stopped before it are left out; ``n`` says how many counted)."""
    vals = []
    for r in runs:
        p = point_at_step(r, step)
        if p is not None and p.get(key) is not None:
            vals.append(p[key] * scale)
    return mean_std(vals)


def iteration_table(report: Dict[str, Any], iterations: Sequence[int]) -> List[str]:
    """HALO Table 2/3 shape: accuracy %, training loss and training joules at each
    iteration count, the smoothed final accuracy, and energy per step relative to Adam's."""
    its = list(iterations)
    ref = report["optimizers"].get("adam")
    ref_j = (ref["joules"]["mean"] / max(1, ref["runs"][0]["steps"])
             if ref and ref["joules"]["mean"] is not None else None)
    cols = (["optimizer", "lr"] + [f"acc % {_k(i)}" for i in its]
            + [f"final acc % (last {report['smooth_evals']})"]
            + [f"loss {_k(i)}" for i in its] + [f"J {_k(i)}" for i in its]
            + ["J per point", "J per step / Adam's"])
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for name, o in report["optimizers"].items():
        runs = o["runs"]
        lr = fmt(o["lr"]) if isinstance(o.get("lr"), (int, float)) else "-"
        lr += " †" if at_grid_edge(o) else ""
        acc = [ms(at_steps(runs, i, "accuracy", 100.0), digits=2) for i in its]
        loss = [ms(at_steps(runs, i, "loss"), digits=3) for i in its]
        joules = [ms(at_steps(runs, i, "joules")) for i in its]
        per_step = o["joules"]["mean"] / max(1, runs[0]["steps"]) if o["joules"]["mean"] is not None else None
        ratio = fmt(per_step / ref_j) if per_step is not None and ref_j else "-"
        rows.append("| " + " | ".join([name, lr] + acc + [ms(o["final_accuracy_smoothed"], 100, 2)]
                                      + loss + joules + [ms(o["joules_per_point"]), ratio]) + " |")
    if any(at_grid_edge(o) for o in report["optimizers"].values()):
        rows += ["", "† the best learning rate is at the edge of the grid; a better one may lie outside it."]
    return rows


def _plots(part: Dict[str, Any]) -> List[str]:
    pngs = [f for f in part["files"] if f.endswith(".png")]
    if not pngs:
        return [f"Plots: {part['plots_skipped']}.", ""] if part.get("plots_skipped") else []
    out = []
    for f in pngs:
        name = f.rsplit("/", 1)[-1]
        out += [f"![{part['label']} {name[:-4].replace('_', ' ')}]({part['folder']}/{name})", ""]
    return out


def halo_weights_name(parts: Dict[str, Dict[str, Any]]) -> Optional[str]:
    """The HALO weights the parts ran: the report's ``halo_weights``, else the file a halo
    run named in its hyperparameters."""
    for part in parts.values():
        rep = part["report"]
        if rep.get("halo_weights"):
            return rep["halo_weights"]["name"]
        halo = rep["optimizers"].get("halo")
        path = halo and halo["runs"] and halo["runs"][0]["hyperparameters"].get("weights")
        if path:
            return Path(str(path)).stem
    return None


def paper_markdown(parts: Dict[str, Dict[str, Any]], iterations: Sequence[int],
                   command: Optional[str]) -> str:
    """The whole ``paper.md``."""
    lines = ["# HALO's tables and sparsity ablation, measured with this project's optimizers", ""]
    if command:
        lines += ["Made by:", "", "```sh", command, "```", ""]
    weights = halo_weights_name(parts)
    lines += ["The shape follows HALO (Li et al., ECCV 2020) Tables 2 and 3 and Fig. 4; the "
              "numbers are this project's, on this machine"
              + (f" (HALO weights: {weights})" if weights else "") + ". HALO's published numbers "
              "beside these, and why they differ: [paper-comparison.md](paper-comparison.md). "
              "Accuracy: the target test split; "
              "loss: mean training loss of the steps since the previous evaluation (nats); J: "
              "training energy (evaluations excluded), cumulative at the iteration. Mean ± std "
              "over seeds. Hand-designed optimizers ran at their best learning rate of the grid "
              "(picked by mean final accuracy over the last evaluations); learned ones are not "
              "tuned. Each part has its full `report.json` and `report.md` in its folder.", ""]
    for key, part in parts.items():
        rep = part["report"]
        lines += [f"## {part['label']} shape: {part['description']}", "",
                  f"Task `{rep['task']}`, model `{rep['model']}`; energy: {energy_label(rep)}.", ""]
        if key == "ablation":
            lines += ["Structural sparsity `NAME:A-B-C`: update probability (%) of the first, "
                      "middle and last third of the layers; `halo` runs the sparsity its weights were "
                      "trained for by default (halo-v0: 10-30-50), "
                      "hand-designed optimizers run dense unless a scheme is given. (HALO's "
                      "Fig. 4 also has Adam trained from scratch; not run here.)", ""]
            lines += main_table(rep)
        else:
            lines += iteration_table(rep, iterations)
        lines += [""] + [x for x in header_lines(rep) if not x.startswith("- command:")]
        lines += [f"- full report: [{part['folder']}/report.md]({part['folder']}/report.md)", ""]
        lines += _plots(part)
    return "\n".join(lines)
