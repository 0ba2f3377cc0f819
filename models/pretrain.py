"""Source-domain checkpoints: pretrain a task's model on its source split once, cache, reuse."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from kernels.optimizers import make_optimizer
from models.checkpoint import load_model, read_header, save_model
from models.data import TaskData
from models.nets import ModelError, Network, build_network
from models.train import Trainer, train_steps

PRETRAIN_VERSION = 1
PRETRAIN_LR = 1e-3
PRETRAIN_SEED = 0


def pretrain_steps(task: str, arch: str) -> int:
    """Adam steps (batch 64) of source pretraining for a task and architecture.

    Chosen so that the source test accuracy is near its plateau: MNIST cnn-a/b
    reaches about 99% on B-test in 1500 steps (feasibility.md); tabular MLPs and
    the synthetic task are small and converge sooner.
    """
    if task.startswith("synthetic"):
        return 400
    if arch == "mlp":
        return 2000
    if task.startswith("cifar10"):
        return 3000
    return 1500


def cache_dir(data_dir: Path) -> Path:
    """Where checkpoints are cached: ``$HALO_CACHE_DIR/checkpoints`` when that is set,
    else ``DATA_DIR/checkpoints``, or ``~/.cache/halo-agent/checkpoints`` when the
    data directory cannot be written (a read-only dataset mount).

    The choice depends only on the data directory, never on whether a command has
    created it yet: a data directory that does not exist counts as writable when
    its nearest existing ancestor is, so ``adapt`` on a fresh machine and ``serve``
    (which creates the directory first) use the same place."""
    if os.environ.get("HALO_CACHE_DIR"):
        return Path(os.environ["HALO_CACHE_DIR"]).expanduser() / "checkpoints"
    d = Path(data_dir)
    probe = d
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.is_dir() and os.access(str(probe), os.W_OK | os.X_OK):
        return d / "checkpoints"
    return Path("~/.cache/halo-agent").expanduser() / "checkpoints"


def checkpoint_path(data_dir: Path, task: str, arch: str) -> Path:
    """Where the cached source checkpoint of (task, arch) lives."""
    return cache_dir(data_dir) / f"{task}--{arch}--source.npz"


def _expected_meta(task: str, arch: str) -> Dict[str, Any]:
    return {"task": task, "role": "source", "pretrain_version": PRETRAIN_VERSION,
            "pretrain_optimizer": "adam", "pretrain_lr": PRETRAIN_LR,
            "pretrain_seed": PRETRAIN_SEED, "pretrain_steps": pretrain_steps(task, arch)}


def source_checkpoint(data: TaskData, arch: str, data_dir: Path,
                      log: Optional[Callable[[str], None]] = None) -> Path:
    """The path of the source checkpoint for ``data.spec`` and ``arch``, made on first use.

    A cached file is reused when its header matches the pretraining recipe (task,
    steps, optimizer, lr, seed, version); otherwise it is made again by seeded
    Adam training on the source train split and written atomically.
    """
    spec = data.spec
    path = checkpoint_path(data_dir, spec.name, arch)
    want = _expected_meta(spec.name, arch)
    if path.exists():
        try:
            header = read_header(path)
            if all(header.get(k) == v for k, v in want.items()) and header.get("arch") == arch:
                return path
        except ModelError:
            pass  # unreadable: make it again
    log = log or (lambda msg: print(msg, file=sys.stderr))
    steps = want["pretrain_steps"]
    log(f"pretraining {arch} on the source domain of {spec.name} "
        f"({steps} Adam steps, lr {PRETRAIN_LR}); cached at {path}")
    net = build_network(arch, spec.input_shape, spec.num_classes, seed=PRETRAIN_SEED)
    t0 = time.perf_counter()
    trainer = Trainer(net, make_optimizer("adam", lr=PRETRAIN_LR), seed=PRETRAIN_SEED)
    x, y = data.source_train.x, data.source_train.y
    train_steps(trainer, x, y, steps, spec.batch_size, PRETRAIN_SEED)
    src_acc, src_loss = net.evaluate(data.source_test.x, data.source_test.y)
    tgt_acc, _ = net.evaluate(data.target_test.x, data.target_test.y)
    seconds = time.perf_counter() - t0
    log(f"pretrained in {seconds:.1f} s: source test accuracy {src_acc:.4f}, "
        f"target test accuracy before adaptation {tgt_acc:.4f}")
    meta = dict(want, source_test_accuracy=src_acc, source_test_loss=src_loss,
                target_test_accuracy=tgt_acc, pretrain_seconds=round(seconds, 3),
                dataset=spec.dataset)
    return save_model(path, net, meta)


def load_source_model(data: TaskData, arch: str, data_dir: Path,
                      log: Optional[Callable[[str], None]] = None) -> Network:
    """The pretrained source model of a task (made and cached on first use)."""
    net, header = load_model(source_checkpoint(data, arch, data_dir, log=log))
    spec = data.spec
    if tuple(net.input_shape) != tuple(spec.input_shape) or net.num_classes != spec.num_classes:
        raise ModelError(f"model {arch!r} checkpoint has input {net.input_shape} and "
                         f"{net.num_classes} classes; task {spec.name} needs "
                         f"{tuple(spec.input_shape)} and {spec.num_classes}")
    return net
