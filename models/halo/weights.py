"""Reading and writing versioned HALO weights: an ``.npz`` of arrays plus a JSON model card.

The ``.npz`` holds ``format`` (``arch.FORMAT``), the MLP (``mlp_w``, ``mlp_b``,
``mlp_delta``, ``mlp_mu``, ``mlp_b_q``), the controller (``theta``), the
constants (``base_lr``, ``beta1``, ``beta2``, ``eps``, ``log_clip``) and the
structural sparsity per third (``update_probabilities``; a file without it, such
as halo-v0, means HALO's 10/30/50) and, from halo-v3 on, the validation level
(``validation``: float64 values in ``arch.VALIDATION_FIELDS`` order, trailing fields added
later optional; absent: none).

Shipped versions are ``models/weights/halo-vN.npz``; the default (what
``--optimizer halo`` runs) is the one with the highest N.  The card
(same path, ``.json``) describes architecture, features, version, provenance and
evaluation for people; loading needs only the ``.npz``.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np

from kernels.halo_fold import MirrorMLP
from models.halo.arch import FORMAT, VALIDATION_FIELDS, HaloWeights, check_weights
from models.halo.schedule import MIN_FIELDS as MIN_VALIDATION_FIELDS
from models.halo.schedule import ValidationLevel

_SCALARS = ("base_lr", "beta1", "beta2", "eps", "log_clip")
_VERSION = re.compile(r"^halo-v(\d+)\.npz$")


def weights_dir() -> Path:
    """The folder of the shipped weights (inside the installed ``models`` package)."""
    try:
        from importlib.resources import files

        return Path(str(files("models").joinpath("weights")))
    except (ImportError, TypeError):  # pragma: no cover - Python < 3.9 or odd loaders
        return Path(__file__).resolve().parent.parent / "weights"


def shipped_versions() -> Dict[str, Path]:
    """Shipped weights by name (``halo-v0``, ``halo-v1``, ...), oldest first."""
    found = []
    for p in weights_dir().glob("halo-v*.npz"):
        m = _VERSION.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return {p.stem: p for _, p in sorted(found)}


def default_weights_path() -> Path:
    """Path of the newest shipped weights (``halo-vN.npz`` with the highest N)."""
    versions = shipped_versions()
    if not versions:
        raise ValueError(f"no HALO weights shipped in {str(weights_dir())!r}")
    return list(versions.values())[-1]


def card_path(path: Union[str, Path]) -> Path:
    """The model card next to a weights file: ``x.npz`` -> ``x.json``."""
    return Path(path).with_suffix(".json")


def load_weights(path: Union[str, Path, None] = None) -> HaloWeights:
    """Read HALO weights from ``path`` (None: the newest shipped version).

    Raises ``ValueError`` naming the path when the file is missing, unreadable,
    of another format, or holds arrays of the wrong shape or non-finite values.
    """
    p = default_weights_path() if path is None else Path(path)
    where = f"HALO weights {str(p)!r}"
    try:
        with open(p, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise ValueError(f"{where}: no such file") from None
    except OSError as e:
        raise ValueError(f"{where}: cannot be read ({e})") from None
    if magic != b"PK\x03\x04":
        raise ValueError(f"{where}: not an .npz file (no zip header)")
    try:
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{where}: not a readable .npz file ({e})") from None
    fmt = str(data.get("format", ""))
    if fmt != FORMAT:
        raise ValueError(f"{where}: format {fmt!r}, expected {FORMAT!r}")
    try:
        mlp = MirrorMLP(data["mlp_w"], data["mlp_b"], data["mlp_delta"], data["mlp_mu"],
                        float(data["mlp_b_q"]))
        probs = tuple(float(x) for x in data["update_probabilities"]) \
            if "update_probabilities" in data else HaloWeights._field_defaults["update_probabilities"]
        validation = None
        if "validation" in data:
            vals = [float(v) for v in np.ravel(data["validation"])]
            if not MIN_VALIDATION_FIELDS <= len(vals) <= len(VALIDATION_FIELDS):
                raise ValueError(f"validation has {len(vals)} values, expected "
                                 f"{MIN_VALIDATION_FIELDS} to {len(VALIDATION_FIELDS)} "
                                 f"({', '.join(VALIDATION_FIELDS)})")
            validation = ValidationLevel(*vals)
        w = HaloWeights(mlp, data["theta"], **{k: float(data[k]) for k in _SCALARS},
                        update_probabilities=probs, validation=validation)
    except KeyError as e:
        raise ValueError(f"{where}: missing array {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: bad array ({e})") from None
    return check_weights(w, where)


def save_weights(path: Union[str, Path], w: HaloWeights,
                 card: Optional[Dict[str, Any]] = None) -> Path:
    """Write ``w`` to ``path`` (``.npz``) and, if given, ``card`` to the ``.json`` beside it."""
    p = Path(path)
    w = check_weights(w, f"HALO weights {str(p)!r}")
    arrays = {"format": np.array(FORMAT), "mlp_w": w.mlp.w, "mlp_b": w.mlp.b,
              "mlp_delta": w.mlp.delta, "mlp_mu": w.mlp.mu, "mlp_b_q": np.array(w.mlp.b_q),
              "theta": w.theta}
    arrays.update({k: np.array(getattr(w, k)) for k in _SCALARS})
    arrays["update_probabilities"] = np.asarray(w.update_probabilities, np.float64)
    if w.validation is not None:
        arrays["validation"] = np.asarray([float(v) for v in w.validation], np.float64)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "wb") as f:
        np.savez(f, **arrays)
    if card is not None:
        card_path(p).write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    return p
