"""``halo-agent bench publish``: run every benchmark the README and docs cite, in one go.

Each step is the documented ``halo-agent`` command, run in a subprocess exactly as a
reader would type it; each writes its ``report.json`` (and ``report.md``, plots) under
``--out``.  Then one table row per step is made from the report alone, with a link to
it, and written to ``OUT/published.md``; with ``--readme`` the README's table between
the markers ``<!-- published:begin -->`` and ``<!-- published:end -->`` is replaced by
the same rows, so every figure there comes from a committed report.  The rows are also
kept in ``OUT/published.json`` with when and how each was made: ``--only STEPS`` reruns
those steps and takes every other row from there as published (its command as it was
run, e.g. with the ``--data-dir`` of that run), or from its report when there is no
stored row.

``--quick`` runs the same steps on the built-in synthetic task with a handful of steps
and one seed: it checks the whole pipeline in minutes, its numbers mean nothing, and it
never touches the README.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

BEGIN, END = "<!-- published:begin -->", "<!-- published:end -->"


@dataclass(frozen=True)
class Step:
    """One published benchmark: its folder, the command (full and quick), and its row."""

    name: str
    what: str
    full: Sequence[str]
    quick: Sequence[str]
    row: Callable[[Dict[str, Any]], str]
    stdout_report: bool = False  # the command prints the report (adapt) instead of --out


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _energy(r: Dict[str, Any]) -> str:
    return "estimated" if r.get("estimated") else "measured"


def adapt_row(r: Dict[str, Any]) -> str:
    upd = (r.get("energy_split") or {}).get("share_of_training", {}).get("optimizer_update")
    return (f"{_pct(r['initial_accuracy'])} -> {_pct(r['final_accuracy'])} target test accuracy; "
            f"{r['seconds']:.1f} s, {r['joules']:.1f} J ({_energy(r)}) of training"
            + (f", optimizer update {_pct(upd)} of it" if upd is not None else ""))


def compare_row(r: Dict[str, Any]) -> str:
    opts = r["optimizers"]
    base = [k for k, e in opts.items() if e["hand_designed"]]
    best = max(base, key=lambda k: opts[k]["final_accuracy_smoothed"]["mean"]) if base else None
    hw = (r.get("halo_weights") or {}).get("name", "halo")

    def fig(label: str) -> str:
        e = opts[label]
        jpp = e["joules_per_point"]["mean"]
        lr = f" {e['lr']:g}" if e.get("lr") is not None and e["hand_designed"] else ""
        return (f"{label}{lr}: {_pct(e['final_accuracy_smoothed']['mean'])}, "
                f"{'-' if jpp is None else f'{jpp:.3g}'} J/pt")
    halo = [k for k, e in opts.items() if e["optimizer"] == "halo"]
    parts = [f"{hw} untuned " + fig(halo[0])] if halo else []
    if best:
        parts.append("best tuned baseline " + fig(best))
    return "; ".join(parts) + f" (smoothed final accuracy, {_energy(r)} energy, seeds: {r['seeds']})"


def paper_row(parts: Dict[str, Any]) -> str:
    out = []
    for name, r in parts.items():
        opts = r["optimizers"]
        best = max(opts, key=lambda k: opts[k]["final_accuracy_smoothed"]["mean"])
        txt = f"{name}: best {best} {_pct(opts[best]['final_accuracy_smoothed']['mean'])}"
        if "halo" in opts and best != "halo":
            txt += f", halo {_pct(opts['halo']['final_accuracy_smoothed']['mean'])}"
        out.append(txt)
    return "; ".join(out)


def kernels_row(r: Dict[str, Any]) -> str:
    updates = r.get("updates", [])
    largest = max((u["n"] for u in updates), default=None)
    ups = [u for u in updates if u["n"] == largest]
    txt = ", ".join(f"{u['weights']} {u['ratio']:.2f}x" for u in ups)
    return f"HALO update / Adam update at n = {ups[0]['n']:.0e}: {txt}" if ups else "see report"


def steps(data_dir: Optional[str] = None) -> List[Step]:
    """The published benchmarks (README table order); ``data_dir`` as the user wrote it."""
    d = ["--data-dir", data_dir] if data_dir else []
    syn = ["--task", "synthetic-a", "--steps", "20", "--eval-every", "10"]
    return [
        Step("adapt-mnist-a", "mnist-a, cnn-b, Adam 1e-3, 300 steps",
             ["adapt", "--task", "mnist-a", "--model", "cnn-b", "--optimizer", "adam", "--lr", "1e-3",
              "--steps", "300", "--json", *d],
             ["adapt", *syn, "--optimizer", "adam", "--lr", "1e-3", "--idle-seconds", "0", "--json", *d],
             adapt_row, stdout_report=True),
        Step("adapt-tdp-female", "tdp-female, MLP, Adam 1e-3, 300 steps",
             ["adapt", "--task", "tdp-female", "--optimizer", "adam", "--lr", "1e-3", "--json", *d],
             ["adapt", *syn, "--optimizer", "sgd", "--lr", "1e-2", "--idle-seconds", "0", "--json", *d],
             adapt_row, stdout_report=True),
        Step("compare-mnist-a", "joules per accuracy point, mnist-a / cnn-b, untuned HALO against "
             "Adam dense and with HALO's sparsity, each tuned on 1e-2, 1e-3, 1e-4",
             ["bench", "compare", "--task", "mnist-a", "--model", "cnn-b", "--optimizers", "halo,adam",
              "--tune-lr", "1e-2,1e-3,1e-4", "--seeds", "3", "--steps", "300", *d],
             ["bench", "compare", *syn, "--optimizers", "halo,adam", "--tune-lr", "1e-2,1e-3",
              "--seeds", "1", "--idle-seconds", "0", "--warmup-steps", "0", "--no-plots", *d],
             compare_row),
        Step("paper", "HALO's Tables 2-3 (TDP, GSAD MLPs, 1k/2k/3k iterations) and Fig. 4 "
             "(sparsity ablation on mnist-a / cnn-b)",
             ["bench", "paper", "--seeds", "3", "--ablation", "mnist-a:cnn-b", "--ablation-lr",
              "adam=1e-2", "--ablation-eval-every", "50", *d],
             ["bench", "paper", "--seeds", "1", "--tables", "synthetic-a:cnn-a", "--iterations",
              "10,20", "--eval-every", "10", "--ablation", "synthetic-a:cnn-a", "--ablation-steps",
              "20", "--ablation-eval-every", "10", "--tune-lr", "1e-2", "--ablation-lr", "adam=1e-2",
              "--idle-seconds", "0", "--warmup-steps", "0", *d],
             paper_row),
        Step("kernels", "HALO's update and training step against Adam's, 1 thread, "
             "every shipped weights version",
             ["bench", "kernels"],
             ["bench", "kernels", "--sizes", "1e4", "--rounds", "3", "--cases", "synthetic-a:cnn-a",
              "--sparse-steps", "0", "--block", "5"],
             kernels_row),
    ]


def _run(argv: Sequence[str], log: Callable[[str], None], env: Dict[str, str]) -> str:
    cmd = [sys.executable, "-m", "agent", *argv]
    log("publish: halo-agent " + " ".join(argv))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"'halo-agent {' '.join(argv)}' failed (exit {p.returncode}): "
                           f"{p.stderr.strip()[-2000:]}")
    return p.stdout


def _existing_report(step: Step, folder: Path, out: Path) -> Optional[Dict[str, Any]]:
    """The report a step wrote earlier into ``out`` (None: there is none)."""
    if step.name == "paper":
        return _paper_parts(out) or None
    path = folder / "report.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _paper_parts(folder: Path) -> Dict[str, Any]:
    return {p.name: json.loads((p / "report.json").read_text())
            for p in sorted(folder.glob("paper-*")) if (p / "report.json").is_file()}


def _stored_rows(out: Path) -> Dict[str, Dict[str, Any]]:
    """The rows ``OUT/published.json`` holds, by step name ({} when there is none)."""
    path = out / "published.json"
    if not path.is_file():
        return {}
    try:
        return {r["name"]: r for r in json.loads(path.read_text())["rows"]}
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a published.json of bench publish ({e})") from None


def run_publish(out: Path, data_dir: Optional[str] = None, *, quick: bool = False,
                readme: Optional[Path] = None,
                only: Optional[Sequence[str]] = None,
                log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> Dict[str, Any]:
    """Run the steps, write ``OUT/published.md`` (and the README table); the rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if data_dir:
        env["HALO_DATA_DIR"] = str(data_dir)  # bench kernels reads its tasks from here
    rows = []
    stored = {} if quick else _stored_rows(out)
    rerun = [s.name for s in steps(data_dir) if not only or s.name in only]
    t0 = time.monotonic()
    for step in steps(data_dir):
        argv = list(step.quick if quick else step.full)
        folder = out / step.name if step.name != "paper" else out
        if step.stdout_report:
            link = f"{step.name}/report.json"
            shown = argv + [">", str(folder / "report.json")]
        else:
            argv += ["--out", str(folder)]
            shown = argv
            link = "paper.md" if step.name == "paper" else f"{step.name}/report.md"
        command = "halo-agent " + " ".join(shown)
        made = None  # this run's: filled in below, once its time is known
        if only and step.name not in only:
            report = _existing_report(step, folder, out)
            if report is None:
                continue
            old = stored.get(step.name, {})  # as published: its command as run, and when
            command = old.get("command", command)
            made = old.get("made", "an earlier run (its report was already in OUT)")
        elif step.stdout_report:
            folder.mkdir(parents=True, exist_ok=True)
            report = json.loads(_run(argv, log, env))
            report["command"] = "halo-agent " + " ".join(argv)
            (folder / "report.json").write_text(json.dumps(report, indent=1) + "\n")
        else:
            _run(argv, log, env)
            report = (_paper_parts(out) if step.name == "paper"
                      else json.loads((folder / "report.json").read_text()))
        rows.append({"name": step.name, "what": ("quick check of: " if quick else "") + step.what,
                     "result": step.row(report), "command": command, "report": link,
                     "made": made})
    secs = time.monotonic() - t0
    this_run = (f"{time.strftime('%Y-%m-%d')}, `halo-agent bench publish"
                + (f" --only {','.join(rerun)}" if only else "")
                + (f" --data-dir {data_dir}" if data_dir else "")
                + "`" + ("" if only else " (every step)") + f" in {secs:.0f} s")
    for r in rows:
        if r["made"] is None:
            r["made"] = this_run
    table = published_table(rows, prefix="")
    head = ["# Published numbers", "",
            ("**Quick check run: these numbers are from a few steps on the built-in synthetic "
             "task and mean nothing.**" if quick else
             "Every number in the README's measured table, made by `halo-agent bench publish "
             f"--out {out}`; each row links the report it comes from."), "",
            "Made:"] + [f"- {r['name']}: {r['made']}" for r in rows] + [""]
    (out / "published.md").write_text("\n".join(head + table) + "\n")
    if not quick:
        (out / "published.json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    if readme is not None and not quick:
        rel = os.path.relpath(out, Path(readme).parent)
        replace_readme_table(Path(readme), published_table(rows, prefix=rel + "/"))
    return {"rows": rows, "quick": quick, "out": str(out)}


def published_table(rows: Sequence[Dict[str, Any]], prefix: str) -> List[str]:
    lines = ["| what | result | command | report |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['what']} | {r['result']} | `{r['command']}` | "
                     f"[{r['report']}]({prefix}{r['report']}) |")
    return lines


def replace_readme_table(readme: Path, table: Sequence[str]) -> None:
    """Replace what lies between the published markers of ``readme`` (they must exist)."""
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme}: no '{BEGIN}' ... '{END}' markers around the measured table")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + BEGIN + "\n" + "\n".join(table) + "\n" + END + tail)
