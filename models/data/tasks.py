"""The registry of adaptation tasks after HALO Table 1: which data, which classes, which model.

"Task X-a" always means *adapt to subset A, pretrain on the other subset (B)*; "X-b" is
the reverse. Inside a subset labels are renumbered 0..k-1 in ascending class-id order,
so the classifier head keeps its size across the two subsets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Tuple

from .cifar import CIFAR10_CLASSES
from .errors import UnknownTask
from .gsad import GAS_NAMES
from .har import ACTIVITIES
from .mnist import FASHION_CLASSES, MNIST_CLASSES
from .synthetic import DOMAIN_CLASSES, GLYPH_NAMES
from .thyroid import TDD_CLASSES

BATCH_SIZE = 64


@dataclass(frozen=True)
class TaskSpec:
    """What a task fixes. ``source_classes`` / ``target_classes``: dataset class ids of
    the pretraining / adaptation subsets (labels 0..k-1 follow their ascending order);
    ``source_domain`` / ``target_domain``: a human name of each subset (for TDP the
    classes are the same and the domain is the patients' sex); ``input_shape``: one
    sample, NHWC ``(H, W, C)`` for images or ``(F,)`` for tabular data; ``needs_files``:
    False only for the built-in synthetic tasks."""

    name: str
    dataset: str
    source_classes: Tuple[int, ...]
    target_classes: Tuple[int, ...]
    default_model: str
    input_shape: Tuple[int, ...]
    num_classes: int
    batch_size: int
    description: str
    needs_files: bool
    source_domain: str
    target_domain: str
    source_class_names: Tuple[str, ...]
    target_class_names: Tuple[str, ...]

    def as_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict of every field (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


_EVEN, _ODD = (0, 2, 4, 6, 8), (1, 3, 5, 7, 9)


def _ab_pair(prefix: str, dataset: str, a: Tuple[int, ...], b: Tuple[int, ...],
             names: Tuple[str, ...], a_label: str, b_label: str, model: str,
             shape: Tuple[int, ...], what: str, needs_files: bool = True
             ) -> Tuple[TaskSpec, TaskSpec]:
    def pick(ids: Tuple[int, ...]) -> Tuple[str, ...]:
        return tuple(names[i] for i in ids)

    def one(suffix: str, src: Tuple[int, ...], src_l: str, tgt: Tuple[int, ...],
            tgt_l: str) -> TaskSpec:
        return TaskSpec(
            name=f"{prefix}-{suffix}", dataset=dataset, source_classes=src,
            target_classes=tgt, default_model=model, input_shape=shape,
            num_classes=len(tgt), batch_size=BATCH_SIZE,
            description=(f"{what}: pretrain on {src_l} ({', '.join(pick(src))}), "
                         f"adapt to {tgt_l} ({', '.join(pick(tgt))})"),
            needs_files=needs_files, source_domain=src_l, target_domain=tgt_l,
            source_class_names=pick(src), target_class_names=pick(tgt))

    return one("a", b, b_label, a, a_label), one("b", a, a_label, b, b_label)


def _tdp(target: str, source: str) -> TaskSpec:
    ids = tuple(range(len(TDD_CLASSES)))
    return TaskSpec(
        name=f"tdp-{target}", dataset="thyroid", source_classes=ids, target_classes=ids,
        default_model="mlp", input_shape=(26,), num_classes=len(ids), batch_size=BATCH_SIZE,
        description=(f"thyroid disease (HALO TDP, 26 features, 4 classes): pretrain on "
                     f"{source} patients, adapt to {target} patients; 75/25 stratified "
                     "split per domain, train and test splits oversampled to balance classes"),
        needs_files=True, source_domain=source, target_domain=target,
        source_class_names=TDD_CLASSES, target_class_names=TDD_CLASSES)


def _build_registry() -> Dict[str, TaskSpec]:
    gas_names = ("",) + tuple(GAS_NAMES[i] for i in range(1, 7))
    specs: List[TaskSpec] = []
    specs += _ab_pair("mnist", "mnist", _ODD, _EVEN, MNIST_CLASSES, "A (odd digits)",
                      "B (even digits)", "cnn-a", (28, 28, 1), "MNIST digits")
    specs += _ab_pair("fashion", "fashion-mnist", _ODD, _EVEN, FASHION_CLASSES,
                      "A (odd class ids)", "B (even class ids)", "cnn-a", (28, 28, 1),
                      "Fashion-MNIST")
    specs += _ab_pair("cifar10", "cifar10", _EVEN, _ODD, CIFAR10_CLASSES,
                      "A (plane, bird, deer, frog, ship)", "B (car, cat, dog, horse, truck)",
                      "cnn-a", (32, 32, 3), "CIFAR-10")
    specs += [_tdp("female", "male"), _tdp("male", "female")]
    specs += _ab_pair("gsad", "gsad", (4, 5, 6), (1, 2, 3), gas_names,
                      "A (gas ids 4, 5, 6)", "B (gas ids 1, 2, 3)", "mlp", (128,),
                      "gas sensor drift (UCI 270, 128 features; 75/25 stratified split "
                      "per domain over the batches present)")
    specs += _ab_pair("har", "har", (1, 3, 5), (0, 2, 4), ACTIVITIES, "A", "B", "mlp", (561,),
                      "UCI HAR smartphones (HALO's SP, 561 features; official split by "
                      "subject)")
    specs += _ab_pair("synthetic", "synthetic", DOMAIN_CLASSES["A"], DOMAIN_CLASSES["B"],
                      GLYPH_NAMES, "A (bold noisy glyphs)", "B (thin clean glyphs)",
                      "cnn-a", (28, 28, 1),
                      "built-in procedural glyphs, no files needed", needs_files=False)
    return {s.name: s for s in specs}


_REGISTRY: Dict[str, TaskSpec] = _build_registry()
DEFAULT_TASK = "synthetic-a"


def get_task(name: str) -> TaskSpec:
    """Return the :class:`TaskSpec` of ``name``; :class:`UnknownTask` (a DataError) names
    the bad name and lists the known ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownTask(f"unknown task {name!r}; known tasks: {known}") from None


def list_tasks() -> List[TaskSpec]:
    """Every registered task, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
