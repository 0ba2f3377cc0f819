"""Peak resident memory of adaptation runs and of the daemon, each in a fresh process.

``halo-agent bench memory`` runs, for every selected task and model, one
``halo-agent adapt --json`` in a new Python process and reads the process's own peak
RSS from its report (``peak_rss_mb``: ``getrusage`` ``ru_maxrss``, what
``/usr/bin/time -v`` calls "Maximum resident set size").  A task whose source
checkpoint is not cached yet is first pretrained in a separate process, so the
figure is that of adapting, not of pretraining.  The daemon is measured from outside
(``/proc/PID/status``: VmRSS idle after start-up, VmHWM = its peak) idle and while it
runs one adaptation job.

Writes ``report.json`` and ``report.md`` (a table in MB = 2^20 bytes, with the command).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent


def _adapt_command(task: str, model: Optional[str], optimizer: str, steps: int, data_dir: Path,
                   *extra: str) -> List[str]:
    cmd = [sys.executable, "-m", "agent.cli", "adapt", "--task", task, "--optimizer", optimizer,
           "--steps", str(steps), "--data-dir", str(data_dir), "--idle-seconds", "0",
           "--power-source", "estimate", "--json", *extra]
    return cmd + (["--model", model] if model else [])


def _env() -> Dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def adapt_peak(task: str, model: Optional[str], optimizer: str, steps: int,
               data_dir: Path) -> Dict[str, Any]:
    """One adaptation in a fresh process: its peak RSS (MB) and what it did, or the error."""
    warm = subprocess.run(_adapt_command(task, model, optimizer, 1, data_dir, "--eval-every", "1"),
                          cwd=str(REPO), env=_env(), capture_output=True, text=True)
    if warm.returncode != 0:  # e.g. the dataset is not there: say so, measure nothing
        lines = (warm.stderr.strip() or warm.stdout.strip() or "failed").splitlines()
        return {"task": task, "model": model, "skipped": lines[-1][:300]}
    t0 = time.monotonic()
    res = subprocess.run(_adapt_command(task, model, optimizer, steps, data_dir), cwd=str(REPO),
                         env=_env(), capture_output=True, text=True)
    if res.returncode != 0:
        return {"task": task, "model": model,
                "skipped": (res.stderr.strip() or "failed").splitlines()[-1][:300]}
    r = json.loads(res.stdout)
    return {"task": task, "model": r["model"], "optimizer": r["optimizer"], "steps": r["steps"],
            "peak_rss_mb": r["peak_rss_mb"], "wall_s": round(time.monotonic() - t0, 2),
            "final_accuracy": r["final_accuracy"]}


def _proc_mb(pid: int) -> Tuple[float, float]:
    """``(VmRSS, VmHWM)`` of process ``pid`` in MB, from ``/proc/PID/status`` (kB)."""
    vals = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            vals[key] = round(int(rest.split()[0]) / 1024, 1)
    return vals["VmRSS"], vals["VmHWM"]


def _get(url: str, body: Optional[dict] = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def daemon_peaks(data_dir: Path, task: str, steps: int, settle_s: float = 2.0) -> Dict[str, Any]:
    """The daemon idle (RSS after start-up) and while adapting (its peak over one job)."""
    from bench.api_latency import free_port, serve_command, wait_until

    adapt_peak(task, None, "halo", 1, data_dir)  # the source checkpoint, cached before the daemon
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="halo-mem-") as tmp:
        own = Path(tmp) / "data"  # the daemon's store goes here; the datasets are linked in
        own.mkdir()
        for entry in Path(data_dir).iterdir():
            (own / entry.name).symlink_to(entry.resolve())
        log = open(Path(tmp) / "server.log", "wb")
        proc = subprocess.Popen(serve_command(own, port), cwd=str(REPO), env=_env(),
                                stdout=log, stderr=log)
        try:
            def healthy() -> bool:
                if proc.poll() is not None:
                    raise RuntimeError(f"daemon exited with {proc.returncode}")
                try:
                    return _get(f"{base}/v1/health") is not None
                except OSError:
                    return False

            wait_until(healthy, 60.0)
            time.sleep(settle_s)
            idle, idle_peak = _proc_mb(proc.pid)
            job = {"task": task, "optimizer": "halo", "eval_every": 25, "budget": {"steps": steps}}
            url = f"{base}/v1/adaptations/{_get(f'{base}/v1/adaptations', job)['id']}"

            def finished() -> Optional[str]:  # the final status, one request per poll
                now = _get(url)["status"]
                return None if now in ("queued", "running") else now

            status = wait_until(finished, 600.0, period_s=0.5)
            _, peak = _proc_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
    return {"idle_rss_mb": idle, "idle_peak_mb": idle_peak, "adapting_peak_mb": peak,
            "job": dict(job, status=status)}


def run_memory(data_dir: Path, cases: Sequence[Tuple[str, Optional[str]]], optimizer: str,
               steps: int, daemon_task: Optional[str], log=print) -> Dict[str, Any]:
    """Measure every ``(task, model)`` case and the daemon; the report as a dict."""
    rows = []
    for task, model in cases:
        row = adapt_peak(task, model, optimizer, steps, data_dir)
        log(f"{task}/{row.get('model') or model or 'default'}: "
            + (f"{row['peak_rss_mb']} MB" if "peak_rss_mb" in row else f"skipped: {row['skipped']}"))
        rows.append(row)
    daemon = None
    if daemon_task:
        try:
            daemon = daemon_peaks(data_dir, daemon_task, steps)
            log(f"daemon: idle {daemon['idle_rss_mb']} MB, adapting {daemon_task} peak "
                f"{daemon['adapting_peak_mb']} MB")
        except ImportError as e:
            daemon = {"skipped": f"needs the bench extra ({e})"}
    from bench.compare import machine_info

    return {"unit": "MB (2^20 bytes)", "optimizer": optimizer, "steps": steps, "runs": rows,
            "daemon": daemon,
            "machine": machine_info(),
            "definitions": {
                "peak_rss_mb": "getrusage ru_maxrss of a fresh `halo-agent adapt` process (its "
                               "report's peak_rss_mb): the /usr/bin/time -v figure; source "
                               "checkpoints were cached by an earlier process",
                "idle_rss_mb": "daemon VmRSS a few seconds after /v1/health first answers",
                "adapting_peak_mb": "daemon VmHWM after one adaptation job ran to its end"}}


def markdown(report: Dict[str, Any], command: str) -> str:
    """The report as Markdown: the table, the daemon, the definitions, the command."""
    m = report["machine"]
    lines = ["# Peak memory (RSS) of halo-agent", "",
             f"Command: `{command}`", "",
             f"Machine: {m['platform']} ({m['machine']}, {m['cpus']} CPUs), Python {m['python']}, "
             f"NumPy {m['numpy']}.  Optimizer {report['optimizer']}, {report['steps']} steps per "
             f"run; each run in a fresh process.  MB = 2^20 bytes.", "",
             "| task | model | peak RSS (MB) | final accuracy | wall (s) |",
             "|---|---|---:|---:|---:|"]
    for r in report["runs"]:
        if "peak_rss_mb" in r:
            lines.append(f"| {r['task']} | {r['model']} | {r['peak_rss_mb']:.1f} | "
                         f"{r['final_accuracy']:.4f} | {r['wall_s']:.1f} |")
        else:
            lines.append(f"| {r['task']} | {r['model'] or 'default'} | skipped: {r['skipped']} | | |")
    d = report.get("daemon")
    if d and "idle_rss_mb" in d:
        lines += ["", "| daemon | RSS (MB) |", "|---|---:|",
                  f"| idle, after start-up | {d['idle_rss_mb']:.1f} |",
                  f"| peak while adapting {d['job']['task']} with halo "
                  f"({d['job']['budget']['steps']} steps, {d['job']['status']}) | "
                  f"{d['adapting_peak_mb']:.1f} |"]
    elif d:
        lines += ["", f"Daemon: skipped ({d['skipped']})."]
    lines += ["", "Definitions:", ""] + [f"- `{k}`: {v}" for k, v in report["definitions"].items()]
    return "\n".join(lines) + "\n"

