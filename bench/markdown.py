"""Markdown rendering of a benchmark report (``report.md``): one table per comparison,
one per learning-rate grid, the definitions, and the command that made it."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from power.runrecord import record_line


def fmt(v: Optional[float]) -> str:
    """A number in 3 significant digits ("-" for None)."""
    if v is None:
        return "-"
    return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def ms(stat: Optional[Dict[str, Any]], scale: float = 1.0, digits: Optional[int] = None) -> str:
    """``mean ± std`` of a ``{mean, std}`` dict, times ``scale``; "-" when absent."""
    if not stat or stat.get("mean") is None:
        return "-"
    m, s = stat["mean"] * scale, (stat.get("std") or 0.0) * scale
    if digits is not None:
        return f"{m:.{digits}f} ± {s:.{digits}f}"
    return f"{fmt(m)} ± {fmt(s)}"


def energy_label(report: Dict[str, Any]) -> str:
    """Which source the joules come from, saying 'estimated' when they are."""
    src = report["energy_source"]
    covers = f"; covers {report['energy_covers']}" if report.get("energy_covers") else ""
    if report.get("estimated"):
        return (f"{src} (profile {report.get('energy_profile')}): **estimated** from CPU "
                f"utilisation, not measured{covers}")
    return f"{src} (measured{covers})"


def header_lines(report: Dict[str, Any]) -> List[str]:
    """The bullet list that says how a report's numbers were made."""
    lines = [
        f"- {report['seeds']} seeds {report['seed_list']}, {report['steps']} steps per run, "
        f"evaluation every {report['eval_every']} steps on the target test split",
        f"- energy source: {energy_label(report)}; joules are of the training steps only",
        f"- target accuracy: {100 * report['target_accuracy']:.2f}% ({report['target_source']})",
    ]
    if report.get("budget_joules") is not None:
        lines.append(f"- joule budget for 'acc at budget': {fmt(report['budget_joules'])} J")
    hw = report.get("halo_weights")
    if hw:
        probs = "/".join(f"{100 * p:.1f}" for p in hw["update_probabilities"])
        lines.append(f"- HALO weights: {hw['name']}, trained for update probabilities {probs}% by "
                     f"third of the layers; a `NAME:halo` arm is that baseline with the same sparsity")
    grid = report.get("tune_lr")
    if isinstance(grid, dict):
        per_arm = "; ".join(f"{k}: {', '.join(f'{x:g}' for x in v)}" for k, v in grid.items())
        lines.append(f"- learning rates run per hand-designed optimizer: {per_arm}; "
                     f"learned ones are not tuned")
    elif grid:
        lines.append(f"- learning-rate grid for hand-designed optimizers: "
                     f"{', '.join(f'{x:g}' for x in grid)}; learned ones are not tuned")
    lines.append(f"- order: {report['definitions']['order']}")
    m = report.get("machine") or {}
    if m:
        lines.append(f"- machine: {m.get('platform')}, {m.get('cpus')} CPUs, Python "
                     f"{m.get('python')}, NumPy {m.get('numpy')}, {report.get('threads', 1)} "
                     f"BLAS thread(s); {m.get('date')}")
    if report.get("run_record"):
        lines.append(f"- run record: {record_line(report['run_record'])}")
    if report.get("wall_seconds") is not None:
        lines.append(f"- whole benchmark: {fmt(report['wall_seconds'])} s wall, "
                     f"{fmt(report.get('benchmark_joules'))} J (warm-up and evaluations included)")
    if report.get("peak_rss_mb") is not None:
        lines.append(f"- peak resident memory of the benchmark process: {report['peak_rss_mb']} MB")
    if report.get("command"):
        lines.append(f"- command: `{report['command']}`")
    return lines


def main_table(report: Dict[str, Any]) -> List[str]:
    """The per-optimizer table (mean ± std over seeds)."""
    budget = report.get("budget_joules") is not None
    cols = ["optimizer", "lr", "initial acc %", "final acc %",
            f"final acc % (last {report['smooth_evals']})", "training J", "J per point",
            "J to target (seeds reached)"] + (["acc % at budget"] if budget else []) + \
        ["ms per step", "tuning J (runs)"]
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for name, o in report["optimizers"].items():
        jt = o.get("joules_to_target") or {}
        reached = f"{ms(jt)} ({jt.get('reached', 0)}/{jt.get('seeds', 0)})" if jt else "-"
        tuning = (f"{fmt(o['tuning_joules'])} ({o.get('tuning_runs')})"
                  if o.get("tuning_joules") is not None else "not tuned")
        cells = [f"**{name}**" if _is_best(report, name) else name,
                 fmt(o["lr"]) if isinstance(o.get("lr"), (int, float)) else "-",
                 ms(o["initial_accuracy"], 100, 2), ms(o["final_accuracy"], 100, 2),
                 ms(o["final_accuracy_smoothed"], 100, 2), ms(o["joules"]),
                 _jpp(o["joules_per_point"]), reached]
        if budget:
            cells.append(ms(o["accuracy_at_budget"], 100, 2))
        cells += [ms(o["seconds_per_step"], 1000), tuning]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _jpp(stat: Dict[str, Any]) -> str:
    text = ms(stat)
    per = stat.get("per_seed") or []
    if stat.get("n", 0) < len(per):
        text += f" ({stat.get('n', 0)}/{len(per)} gained)"
    return text


def _is_best(report: Dict[str, Any], name: str) -> bool:
    vals = {n: (o["joules_per_point"].get("mean") or float("inf"))
            for n, o in report["optimizers"].items()}
    return vals[name] == min(vals.values()) and vals[name] != float("inf")


def at_grid_edge(o: Dict[str, Any]) -> bool:
    """Whether a tuned optimizer's chosen rate is the smallest or largest of its grid
    (``lr_at_grid_edge``, set by the report for every tuned optimizer)."""
    return bool(o.get("lr_at_grid_edge"))


def grid_tables(report: Dict[str, Any]) -> List[str]:
    """One small table per tuned optimizer: every learning rate of the grid."""
    out: List[str] = []
    for name, o in report["optimizers"].items():
        if not o.get("grid"):
            continue
        edge = (" The chosen rate is at the edge of the grid: the best rate may lie outside it."
                if at_grid_edge(o) else "")
        out += ["", f"Learning-rate grid of {name} (mean ± std over seeds; chosen rate in bold).{edge}", "",
                "| lr | final acc % | final acc % (smoothed) | training J | diverged seeds |",
                "|---|---|---|---|---|"]
        for g in o["grid"]:
            lr = f"**{g['lr']:g}**" if g["chosen"] else f"{g['lr']:g}"
            out.append(f"| {lr} | {ms(g['final_accuracy'], 100, 2)} | "
                       f"{ms(g['final_accuracy_smoothed'], 100, 2)} | {ms(g['joules'])} | "
                       f"{g['diverged']} |")
    return out


SPLIT_PARTS = (("forward_backward", "forward + backward"), ("optimizer_update", "optimizer update"),
               ("validation_probe", "validation probes"), ("other_training", "other (batches, masks)"))


def split_table(report: Dict[str, Any]) -> List[str]:
    """Where each arm's energy goes: mean J per run by part, with its share of training."""
    rows = [(label, e["energy_split"]) for label, e in report["optimizers"].items()
            if e.get("energy_split")]
    if not rows:
        return []
    parts = [(k, name) for k, name in SPLIT_PARTS if any(sp["joules"].get(k) for _, sp in rows)]
    lines = ["", f"Where the energy goes (mean J per run; {rows[0][1]['method']}):", "",
             "| optimizer | " + " | ".join(f"{name} J (share of training)" for _, name in parts)
             + " | evaluation J |", "|---" * (len(parts) + 2) + "|"]
    for label, sp in rows:
        cells = [f"{fmt(sp['joules'].get(k, 0.0))} ({100 * sp['share_of_training'].get(k, 0.0):.1f}%)"
                 for k, _ in parts]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {fmt(sp['joules']['evaluation'])} |")
    return lines + [""]


def compare_markdown(report: Dict[str, Any], plots: List[str], note: Optional[str] = None) -> str:
    """The whole ``report.md`` of ``bench compare``."""
    lines = [f"# Joules per accuracy point: {report['task']} / {report['model']}", ""]
    lines += header_lines(report) + [""]
    lines += ["Mean ± std over seeds; bold: lowest joules per accuracy point. Joules per point "
              "favours runs that stop early at a lower accuracy: read it together with the final "
              "accuracy and the joules to the target.", ""]
    lines += main_table(report)
    lines += split_table(report)
    lines += grid_tables(report)
    lines += ["", "Definitions:", ""]
    lines += [f"- `{k}`: {v}" for k, v in report["definitions"].items() if k != "order"]
    lines.append("")
    for p in plots:
        if p.endswith(".png"):
            lines += [f"![{p[:-4].replace('_', ' ')}]({p})", ""]
    if note and not plots:
        lines += [f"Plots: {note}.", ""]
    return "\n".join(lines)
