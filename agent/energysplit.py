"""Where the energy of an adaptation goes: forward+backward, optimizer update, evaluation.

The meter gives the energy of time windows, not of code: the training windows (the
steps) and the evaluation windows are measured apart, and inside the training windows
the trainer times each part of every step (``Trainer.seconds``).  The training joules
are attributed to the parts in proportion to their measured time, which assumes the
board draws the same power during each part; the report labels the split so.
Evaluation joules are measured (the evaluation windows), not attributed.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

METHOD = ("training joules attributed to each part by its measured time within the training "
          "windows (same power assumed for every part); evaluation joules measured by the "
          "evaluation windows")


def energy_split(part_seconds: Mapping[str, float], train_seconds: float, train_joules: float,
                 total_joules: float) -> Dict[str, Any]:
    """``{"method", "seconds", "joules", "share_of_training"}`` by part.

    ``part_seconds``: measured seconds of each timed part of the steps; the rest of the
    training time (batch gathering, masks, bookkeeping) is ``other_training``.
    ``total_joules`` - ``train_joules`` is the evaluation's energy.
    """
    seconds = {k: float(v) for k, v in part_seconds.items()}
    timed = sum(seconds.values())
    seconds["other_training"] = max(0.0, float(train_seconds) - timed)
    whole = max(float(train_seconds), timed)
    share = {k: (v / whole if whole > 0 else 0.0) for k, v in seconds.items()}
    joules = {k: round(train_joules * f, 6) for k, f in share.items()}
    joules["evaluation"] = round(max(0.0, float(total_joules) - float(train_joules)), 6)
    return {"method": METHOD, "seconds": {k: round(v, 6) for k, v in seconds.items()},
            "joules": joules, "share_of_training": {k: round(v, 6) for k, v in share.items()}}
