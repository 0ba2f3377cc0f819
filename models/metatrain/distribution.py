"""The meta-training task distribution: MNIST-train image tasks and procedural tabular tasks.

``task_pool(spec, data_dir, cache_dir)`` turns a JSON-able spec into a list of
:class:`MetaTask` (a pretrained source model plus target train / held-out data and an
unroll length); ``split_pool`` holds whole tasks out for meta-validation.  The two
families are described in ``task_images`` and ``task_tabular``; docs/metatrain.md
("The meta-training distribution") has the default pool as a table.

Everything is deterministic from the spec.  Each source model is pretrained once
with seeded Adam and cached in ``cache_dir`` under a key hashing everything it
depends on (its data recipe, architecture, pretraining budget, this module's
version); a spec change that alters a source gives it a new key, while a change of
target-only settings (horizon, shots, ...) reuses the cached sources.  Writes are
atomic (``models.checkpoint.save_model``).

Fashion-MNIST, CIFAR-10, thyroid, gas-sensor and HAR data are evaluation-only and
are never read here; of MNIST only the training files are opened.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from threadpoolctl import threadpool_limits

from kernels.errors import HaloError
from kernels.optimizers import make_optimizer
from models.checkpoint import load_model, read_header, save_model
from models.metatrain import task_images, task_tabular
from models.metatrain.draws import stream
from models.nets import ModelError, Network, build_network
from models.train import Trainer, train_steps

DISTRIBUTION_VERSION = 1
FAMILIES = ("mnist-image", "tabular")

DEFAULT_SPEC: Dict[str, Any] = {
    "seed": 0,
    "mnist": {
        "tasks": 12,
        "archs": ["cnn-a", "cnn-b", "cnn-c", "mlp", "mlp-deep"],
        "kinds": list(task_images.KINDS),
        "classes": [2, 5],               # k: source and target classes per task
        "shots": [10, 20, 30, 100, 300, 1000],   # target training images per class
        "cnn_horizons": [100, 200, 300],
        "mlp_horizons": [100, 300, 1000],
        "source_per_class": 1000,        # source training images per class
        "val_per_class": 100,            # held-out target images per class
        "batch_size": 64,
        "source_steps": 300,             # Adam steps of source pretraining, batch 64
    },
    "tabular": {
        "tasks": 10,
        "archs": ["mlp", "mlp-deep"],
        "dims": [4, 64],
        "classes": [2, 5],
        "max_imbalance": 20.0,           # largest / smallest class prior
        "max_label_noise": 0.15,
        "scale_decades": 4.0,            # spread of the per-feature scales (log10)
        "train_size": [24, 3000],        # target training examples (before oversampling)
        "val_size": 400,
        "source_size": 2000,
        "horizons": [100, 300, 1000],
        "batch_sizes": [16, 32, 64],
        "source_steps": 1500,
        "flag_fraction": [0.0, 0.0],     # share of features that are 0/1 flags (uniform)
        "heavy_fraction": [0.0, 0.0],    # share that are heavy-tailed (log-normal) readings
    },
    "pretrain_lr": 1e-3,
}

Progress = Callable[[int, int, str], None]


class SpecError(HaloError, ValueError):
    """A task-distribution spec is invalid; the message names the field and the value."""

    def __init__(self, field_name: str, value: Any, expected: str):
        self.field, self.value, self.expected = field_name, value, expected
        super().__init__(f"task spec {field_name}: got {value!r}; expected {expected}")


@dataclass(frozen=True, eq=False)
class MetaTask:
    """One meta-training task: a pretrained source model and the target data it adapts to.

    ``x_*`` are float32 (images NHWC, standardised with the source training images'
    statistics; tabular features standardised with the source's statistics only when
    ``details["source"]["standardize"]``, raw otherwise), ``y_*`` int64 in
    ``0..num_classes-1``.  ``x_val``/``y_val`` are held-out target examples of the same
    distribution, never trained on (for the meta-loss).  Arrays are read-only.
    ``details``: the task's drawn settings, its source accuracy and cache key.
    """

    name: str
    family: str
    arch: str
    input_shape: tuple
    num_classes: int
    source_params: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    horizon: int
    batch_size: int
    details: Mapping[str, Any] = field(default_factory=dict)

    def network(self) -> Network:
        """A fresh network with the source parameters loaded."""
        net = Network(self.arch, self.input_shape, self.num_classes)
        net.params.data[...] = self.source_params
        return net


def resolve_spec(spec: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """``spec`` over :data:`DEFAULT_SPEC` (sections merged key by key), checked.

    Unknown keys and bad values raise :class:`SpecError` naming them.
    """
    out = copy.deepcopy(DEFAULT_SPEC)
    for k, v in dict(spec or {}).items():
        if k.startswith("_"):
            continue
        if k not in out:
            raise SpecError(k, v, f"one of {', '.join(sorted(DEFAULT_SPEC))}")
        if isinstance(out[k], dict):
            if not isinstance(v, Mapping):
                raise SpecError(k, v, "an object")
            for kk, vv in v.items():
                if kk not in out[k]:
                    raise SpecError(f"{k}.{kk}", vv, f"one of {', '.join(sorted(out[k]))}")
                out[k][kk] = copy.deepcopy(vv)
        else:
            out[k] = v
    _check(out)
    return out


_ARCHS = ["cnn-a", "cnn-b", "cnn-c", "mlp", "mlp-deep"]
_MAX_PER_DIGIT = 2400  # images per digit that the smaller half of MNIST-train surely holds
# (field, kind, low, high / allowed values): "int", "number", "ints" (a non-empty list),
# "pair" ([low, high] integers), "fractions" ([low, high] numbers) or "choices"
_RULES: List[Tuple[str, str, Any, Any]] = [
    ("seed", "int", 0, 2 ** 31 - 1), ("pretrain_lr", "number", 1e-6, 1.0),
    ("mnist.tasks", "int", 0, 1000), ("mnist.archs", "choices", None, _ARCHS),
    ("mnist.kinds", "choices", None, list(task_images.KINDS)),
    ("mnist.classes", "pair", 2, 5), ("mnist.shots", "ints", 1, 2000),
    ("mnist.cnn_horizons", "ints", 1, 100000), ("mnist.mlp_horizons", "ints", 1, 100000),
    ("mnist.source_per_class", "int", 10, _MAX_PER_DIGIT - task_images.SOURCE_TEST_PER_CLASS),
    ("mnist.val_per_class", "int", 5, 500), ("mnist.batch_size", "int", 1, 4096),
    ("mnist.source_steps", "int", 1, 1000000),
    ("tabular.tasks", "int", 0, 1000), ("tabular.archs", "choices", None, ["mlp", "mlp-deep"]),
    # a random 2-layer teacher cannot make 10 classes of 2-3 latent dimensions: dims >= 4
    ("tabular.dims", "pair", 4, 4096), ("tabular.classes", "pair", 2, 10),
    ("tabular.max_imbalance", "number", 1.0, 1000.0),
    ("tabular.max_label_noise", "number", 0.0, 0.5),
    ("tabular.scale_decades", "number", 0.0, 10.0),
    ("tabular.train_size", "pair", 4, 1000000), ("tabular.val_size", "int", 10, 1000000),
    ("tabular.source_size", "int", 10, 1000000), ("tabular.horizons", "ints", 1, 100000),
    ("tabular.batch_sizes", "ints", 1, 4096), ("tabular.source_steps", "int", 1, 1000000),
    ("tabular.flag_fraction", "fractions", 0.0, 1.0),
    ("tabular.heavy_fraction", "fractions", 0.0, 1.0),
]


def _is_int(v: Any, lo: Any, hi: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _check(s: Mapping[str, Any]) -> None:
    for path, kind, lo, hi in _RULES:
        sec, _, key = path.rpartition(".")
        v = s[sec][key] if sec else s[key]
        if kind == "int":
            ok, want = _is_int(v, lo, hi), f"an integer in [{lo}, {hi}]"
        elif kind == "number":
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi
            want = f"a number in [{lo}, {hi}]"
        elif kind == "choices":
            ok = isinstance(v, list) and bool(v) and all(e in hi for e in v)
            want = f"a non-empty list of {', '.join(hi)}"
        elif kind == "fractions":
            ok = (isinstance(v, list) and len(v) == 2
                  and all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in v)
                  and lo <= v[0] <= v[1] <= hi)
            want = f"[low, high] with {lo} <= low <= high <= {hi}"
        else:
            ok = (isinstance(v, list) and bool(v) and all(_is_int(e, lo, hi) for e in v)
                  and (kind == "ints" or (len(v) == 2 and v[0] <= v[1])))
            want = ("[low, high] with low <= high" if kind == "pair" else "a non-empty list")
            want += f" of integers in [{lo}, {hi}]"
        if not ok:
            raise SpecError(path, v, want)
    m = s["mnist"]
    if max(m["shots"]) + m["val_per_class"] > _MAX_PER_DIGIT:
        raise SpecError("mnist.shots", m["shots"], f"at most {_MAX_PER_DIGIT} - val_per_class "
                        "per class (what the target half holds of the rarest digit)")


def _key(recipe: Mapping[str, Any]) -> str:
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _source_params(family: str, plan: Mapping[str, Any], source, input_shape, steps: int,
                   lr: float, cache_dir: Path, log: Callable[[str], None]
                   ) -> Tuple[np.ndarray, Dict[str, Any]]:
    """The source model's flat parameters (cached) and its record (key, accuracy, time)."""
    recipe = {"version": DISTRIBUTION_VERSION, "family": family, "arch": plan["arch"],
              "input_shape": list(input_shape), "num_classes": plan["num_classes"],
              "source": plan["source"], "pretrain": {"optimizer": "adam", "lr": lr,
                                                     "steps": steps, "batch_size": 64}}
    key = _key(recipe)
    path = Path(cache_dir) / f"{family}-{plan['arch']}-{key}.npz"
    if path.exists():
        try:
            header = read_header(path)
            if header.get("recipe") == recipe:
                net, _ = load_model(path)
                return net.params.data.copy(), dict({k: header[k] for k in _RECORD}, cached=True)
        except (ModelError, KeyError):
            pass  # unreadable or stale: make it again
    x, y, xt, yt = source
    seed = int(plan["source"]["data_seed"])
    net = build_network(plan["arch"], input_shape, plan["num_classes"], seed=seed)
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        trainer = Trainer(net, make_optimizer("adam", lr=lr), seed=seed)
        train_steps(trainer, x, y, steps, 64, seed)
        acc, loss = net.evaluate(xt, yt)
    seconds = time.perf_counter() - t0
    record = {"key": key, "source_accuracy": float(acc), "source_loss": float(loss),
              "pretrain_seconds": round(seconds, 3)}
    log(f"pretrained {plan['name']} source ({steps} Adam steps) in {seconds:.1f} s: "
        f"source held-out accuracy {acc:.4f}")
    save_model(path, net, dict(record, recipe=recipe, role="meta-train source"))
    return net.params.data.copy(), dict(record, cached=False)


_RECORD = ("key", "source_accuracy", "source_loss", "pretrain_seconds")


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def task_pool(spec: Optional[Mapping[str, Any]], data_dir: Path, cache_dir: Path,
              progress: Optional[Progress] = None,
              log: Optional[Callable[[str], None]] = None) -> List[MetaTask]:
    """The tasks of ``spec`` (see :data:`DEFAULT_SPEC`), image tasks first.

    ``data_dir`` holds ``mnist/train-*`` (only those files are read); ``cache_dir``
    keeps the pretrained source models.  ``progress(done, total, name)`` is called
    after each task; ``log(message)`` for each pretraining (default: silent).
    """
    s = resolve_spec(spec)
    log = log or (lambda msg: None)
    lr = float(s["pretrain_lr"])
    jobs: List[Tuple[str, Dict[str, Any]]] = []
    jobs += [("mnist-image", p) for p in task_images.plan_tasks(s["mnist"], s["seed"])]
    jobs += [("tabular", p) for p in task_tabular.plan_tasks(s["tabular"], s["seed"])]
    tasks = []
    for done, (family, plan) in enumerate(jobs, 1):
        if family == "mnist-image":
            source, target = task_images.build_task(plan, Path(data_dir))
            shape, steps, what = task_images.INPUT_SHAPE, s["mnist"]["source_steps"], task_images
        else:
            source, target = task_tabular.build_task(plan)
            shape = (plan["source"]["dims"],)
            steps, what = s["tabular"]["source_steps"], task_tabular
        params, record = _source_params(family, plan, source, shape, steps, lr,
                                        Path(cache_dir), log)
        details = dict(plan, description=what.describe(plan), **record,
                       n_train=int(len(target[1])), n_val=int(len(target[3])))
        tasks.append(MetaTask(
            name=plan["name"], family=family, arch=plan["arch"], input_shape=tuple(shape),
            num_classes=int(plan["num_classes"]), source_params=_readonly(params),
            x_train=_readonly(target[0]), y_train=_readonly(target[1]),
            x_val=_readonly(target[2]), y_val=_readonly(target[3]),
            horizon=int(plan["horizon"]), batch_size=int(plan["batch_size"]), details=details))
        if progress is not None:
            progress(done, len(jobs), plan["name"])
    return tasks


def split_pool(tasks: Sequence[MetaTask], n_validation: int, seed: int
               ) -> Tuple[List[MetaTask], List[MetaTask]]:
    """``(meta_train, meta_validation)``: ``n_validation`` whole tasks held out.

    The held-out tasks are drawn from each family in proportion to its share of the
    pool (at least one per family when ``n_validation`` allows), so both sides come
    from the same distribution; the order of each side follows ``tasks``.
    """
    n = len(tasks)
    if isinstance(n_validation, bool) or not isinstance(n_validation, int) \
            or not 0 <= n_validation < max(n, 1):
        raise SpecError("n_validation", n_validation, f"an integer in [0, {max(n - 1, 0)}]")
    rng = stream(seed, "split_pool")
    families = sorted({t.family for t in tasks})
    by_family = {f: [i for i, t in enumerate(tasks) if t.family == f] for f in families}
    quota = {f: int(np.floor(n_validation * len(by_family[f]) / n)) for f in families}
    if n_validation >= len(families):
        for f in families:
            quota[f] = max(quota[f], 1)
    while sum(quota.values()) < n_validation:  # largest families first
        f = max(families, key=lambda g: (len(by_family[g]) - quota[g], g))
        quota[f] += 1
    while sum(quota.values()) > n_validation:
        f = max(families, key=lambda g: (quota[g], g))
        quota[f] -= 1
    held = set()
    for f in families:
        idx = by_family[f]
        held.update(idx[j] for j in rng.permutation(len(idx))[:quota[f]])
    return ([t for i, t in enumerate(tasks) if i not in held],
            [t for i, t in enumerate(tasks) if i in held])
