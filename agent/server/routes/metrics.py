"""``GET /metrics``: Prometheus text exposition of jobs, joules and watts."""

import math
import time
from typing import Any, List, Optional

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from agent import __version__
from agent.server.deps import SamplerDep, StoreDep

router = APIRouter(tags=["daemon"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(x: Any) -> str:
    v = float(x)
    if math.isnan(v):
        return "NaN"
    return repr(v) if math.isfinite(v) else ("+Inf" if v > 0 else "-Inf")


def _family(out: List[str], name: str, kind: str, help_text: str, rows: List[str]) -> None:
    out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"] + rows


def render(counts: dict, joules: dict, sample: Any, meter: Any, start_time_s: float,
           board_joules: Optional[float] = None) -> str:
    """The exposition text, named as Prometheus' guidelines and its energy exporters
    (node_exporter, Kepler) do: base units in the name (``_joules``, ``_watts``,
    ``_seconds``), ``_total`` on counters, one metric per quantity with the rail, the
    energy source and the ``estimated`` flag as labels.

    ``counts``: jobs per status; ``joules``: training J per (source, estimated); the
    latest power ``sample`` (W) of ``meter``; ``start_time_s``: when the daemon
    started (Unix time, s); ``board_joules``: J the board used since then (None: no
    reading yet)."""
    out: List[str] = []
    _family(out, "halo_agent_build_info", "gauge",
            "Version of the running daemon (always 1).",
            [f'halo_agent_build_info{{version="{_label(__version__)}"}} 1'])
    _family(out, "halo_agent_start_time_seconds", "gauge",
            "Start time of the daemon since the Unix epoch, in seconds.",
            [f"halo_agent_start_time_seconds {start_time_s:.3f}"])
    _family(out, "halo_agent_jobs", "gauge", "Adaptation jobs by status.",
            [f'halo_agent_jobs{{status="{s}"}} {n}' for s, n in counts.items()])
    _family(out, "halo_agent_training_joules_total", "counter",
            "Energy of the training steps of all jobs (evaluations excluded), in joules.",
            [f'halo_agent_training_joules_total{{source="{_label(src)}",'
             f'estimated="{str(est).lower()}"}} {_num(j)}'
             for (src, est), j in sorted(joules.items())])
    if sample is None:
        return "\n".join(out) + "\n"
    src = _label(getattr(sample, "source", None) or getattr(meter, "source", "unknown"))
    est = str(bool(getattr(sample, "estimated", False)
                   or getattr(meter, "estimated", False))).lower()
    tail = f'source="{src}",estimated="{est}"'
    if board_joules is not None:
        _family(out, "halo_agent_energy_joules_total", "counter",
                "Energy the board used since the daemon started, in joules.",
                [f"halo_agent_energy_joules_total{{{tail}}} {_num(board_joules)}"])
    _family(out, "halo_agent_power_watts", "gauge", "Latest board power, in watts.",
            [f"halo_agent_power_watts{{{tail}}} {_num(sample.total_w)}"])
    _family(out, "halo_agent_rail_power_watts", "gauge", "Latest power per rail, in watts.",
            [f'halo_agent_rail_power_watts{{rail="{_label(r)}",{tail}}} {_num(w)}'
             for r, w in sorted(dict(sample.rails_w).items())])
    return "\n".join(out) + "\n"


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics",
            responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request, store: StoreDep, sampler: SamplerDep
            ) -> PlainTextResponse:
    state = request.app.state
    window = getattr(state, "energy_window", None)
    sample = sampler.latest()
    board_j = window.energy_now_j() if window is not None and sample is not None else None
    text = render(store.counts_by_status(), store.joules_by_source(), sample,
                  getattr(sampler, "meter", None), getattr(state, "started_at", time.time()),
                  board_j)
    return PlainTextResponse(text, media_type=CONTENT_TYPE)
