"""Job records as API answers: summaries, full views with the report, and curve CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List

from agent.server.jsonsafe import json_safe
from agent.server.settings import Settings
from agent.server.store import POINT_FIELDS, JobRecord


def iso(t: float | None) -> str | None:
    """Unix seconds as an ISO 8601 UTC label, or None."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


def summary(rec: JobRecord) -> Dict[str, Any]:
    """A job without its report: status, progress, latest point, energy so far."""
    last = rec.last_point
    return json_safe({
        "id": rec.id, "status": rec.status, "task": rec.request.get("task"),
        "dataset_id": rec.request.get("dataset_id"), "model_id": rec.request.get("model_id"),
        "optimizer": rec.request.get("optimizer"),
        "created_at": iso(rec.created_at), "started_at": iso(rec.started_at),
        "finished_at": iso(rec.finished_at), "progress": rec.progress, "points": rec.n_points,
        "latest_point": last,
        "joules": None if last is None else last.get("joules"),
        "seconds": None if last is None else last.get("seconds"),
        "energy_source": rec.energy_source, "estimated": rec.estimated,
        "cancel_requested": rec.cancel_requested, "error": rec.error,
    })


def model_file(rec: JobRecord, settings: Settings) -> Path | None:
    """The job's adapted model if it exists inside the models folder, else None."""
    if not rec.model_path:
        return None
    root = settings.models_dir.resolve()
    path = Path(rec.model_path).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path


def full(rec: JobRecord, points: List[Dict[str, Any]], settings: Settings) -> Dict[str, Any]:
    """A job with its request and, once finished, the engine's report with its points
    (the same fields as ``halo-agent adapt --json``)."""
    out = summary(rec)
    report = None
    if rec.report is not None:
        report = dict(rec.report, points=points)
        report["status"] = rec.status
    out.update(request=rec.request, report=json_safe(report),
               model_available=model_file(rec, settings) is not None)
    return out


def curve_csv(rec: JobRecord, points: List[Dict[str, Any]]) -> str:
    """The curve as CSV: one row per point, with the energy source on every row."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(POINT_FIELDS) + ["energy_source", "estimated"])
    est = "" if rec.estimated is None else str(bool(rec.estimated)).lower()
    for p in points:
        w.writerow(["" if p.get(k) is None else p.get(k) for k in POINT_FIELDS]
                   + [rec.energy_source or "", est])
    return buf.getvalue()
