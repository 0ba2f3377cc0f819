"""Export real architectures from PyTorch to ONNX for CIFAR-10-sized input (3x32x32):
the test fixtures of the ONNX importer and the models of its benchmark.

- ``small-resnet``: a CIFAR-style ResNet (3x3 stem, one BasicBlock per stage at 16/32/64
  channels, strided 1x1 downsampling shortcuts, BatchNorm, global average pool);
- ``mobilenetv2-small``: a MobileNetV2-style net (inverted residuals: 1x1 expand,
  3x3 depthwise, 1x1 linear projection; ReLU6; BatchNorm);
- ``resnet18``: the full ImageNet ResNet-18 layout (7x7/2 stem, 3x3/2 max pool, 2-2-2-2
  BasicBlocks at 64-512 channels), written out in plain torch (no torchvision), for the
  benchmark only (45 MB, not committed).

With ``--pretrain-steps N`` (default 300) and the CIFAR-10 files in ``--data-dir`` the
weights are first trained with Adam on the *source* split of ``--task`` (cifar10-a:
car, cat, dog, horse, truck), so that adapting to the target split starts from a model
trained elsewhere, as a user's would be.  Exported in eval mode (BatchNormalization
keeps its running statistics), opset 13, dynamic batch, fixed 3x32x32.

PyTorch is needed here only (``pip install torch==2.13.0``); the tests use the committed
fixtures ``tests/onnx/fixtures/*.onnx`` made by::

    python -m bench.export_onnx --out tests/onnx/fixtures --models small-resnet,mobilenetv2-small \\
        --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np

MODELS = ("small-resnet", "mobilenetv2-small", "resnet18")


def _nn():
    import torch

    return torch, torch.nn


def basic_block(cin: int, cout: int, stride: int):
    """ResNet BasicBlock: 3x3 conv-BN-ReLU, 3x3 conv-BN, plus the (projected) shortcut, ReLU."""
    torch, nn = _nn()

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return self.relu(y + (x if self.down is None else self.down(x)))

    return Block()


def resnet(widths, blocks, num_classes: int, imagenet_stem: bool):
    """A ResNet with BasicBlocks; ``imagenet_stem``: 7x7/2 conv + 3x3/2 max pool (ResNet-18)."""
    torch, nn = _nn()
    stem = ([nn.Conv2d(3, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(),
             nn.MaxPool2d(3, 2, 1)] if imagenet_stem else
            [nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()])
    layers, cin = list(stem), widths[0]
    for k, (w, n) in enumerate(zip(widths, blocks)):
        for b in range(n):
            layers.append(basic_block(cin, w, 2 if (b == 0 and k > 0) else 1))
            cin = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)


def inverted_residual(cin: int, cout: int, stride: int, expand: int):
    """MobileNetV2 block: 1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 linear projection."""
    torch, nn = _nn()
    hidden = cin * expand

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            mods = []
            if expand != 1:
                mods += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
            mods += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                     nn.BatchNorm2d(hidden), nn.ReLU6(),
                     nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
            self.body = nn.Sequential(*mods)
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            return x + self.body(x) if self.residual else self.body(x)

    return Block()


def mobilenetv2_small(num_classes: int):
    """A narrow MobileNetV2 for 32x32 input (stride-1 stem as in CIFAR variants)."""
    torch, nn = _nn()
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6()]
    cin = 16
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2)]:
        for i in range(n):
            layers.append(inverted_residual(cin, c, s if i == 0 else 1, t))
            cin = c
    layers += [nn.Conv2d(cin, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU6(),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, num_classes)]
    return nn.Sequential(*layers)


def make_model(name: str, num_classes: int, seed: int = 0):
    """A torch model of ``name`` (see the module docstring), initialised from ``seed``."""
    torch, _ = _nn()
    torch.manual_seed(seed)
    if name == "small-resnet":
        return resnet((16, 32, 64), (1, 1, 1), num_classes, imagenet_stem=False)
    if name == "mobilenetv2-small":
        return mobilenetv2_small(num_classes)
    if name == "resnet18":
        return resnet((64, 128, 256, 512), (2, 2, 2, 2), num_classes, imagenet_stem=True)
    raise ValueError(f"model: got {name!r}; expected one of {MODELS}")


def pretrain(model, task: str, data_dir: Path, steps: int, seed: int = 0) -> dict:
    """Adam (lr 1e-3, batch 64) on the task's source train split; source test accuracy."""
    torch, _ = _nn()
    from models.data import load_task

    data = load_task(task, data_dir)
    x = torch.from_numpy(np.ascontiguousarray(data.source_train.x.transpose(0, 3, 1, 2)))
    y = torch.from_numpy(data.source_train.y.astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (64,), generator=gen)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    model.eval()
    xt = torch.from_numpy(np.ascontiguousarray(data.source_test.x.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        pred = torch.cat([model(xt[s:s + 256]).argmax(1) for s in range(0, xt.shape[0], 256)])
    acc = float((pred.numpy() == data.source_test.y).mean())
    return {"task": task, "split": "source", "steps": steps, "optimizer": "adam", "lr": 1e-3,
            "source_test_accuracy": round(acc, 4)}


def export(model, path: Path, meta: Optional[dict] = None) -> Path:
    """``model`` (eval mode) to ONNX at ``path``: opset 13, input ``input`` (N, 3, 32, 32),
    output ``logits`` (N, classes), BatchNormalization kept (not folded into the convs)."""
    torch, _ = _nn()
    import onnx

    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)
    m = onnx.load(str(path))
    for k, v in (meta or {}).items():
        e = m.metadata_props.add()
        e.key, e.value = str(k), json.dumps(v) if not isinstance(v, str) else v
    onnx.save(m, str(path))
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.export_onnx", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the .onnx files")
    ap.add_argument("--models", default="small-resnet,mobilenetv2-small",
                    help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--classes", type=int, default=5, help="classifier outputs (cifar10-a has 5)")
    ap.add_argument("--task", default="cifar10-a", help="task whose source split pretrains the weights")
    ap.add_argument("--data-dir", type=Path, default=None, help="data directory with cifar10/")
    ap.add_argument("--pretrain-steps", type=int, default=300, help="0: export the random init")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    for name in names:
        if name not in MODELS:
            ap.error(f"--models: got {name!r}; expected some of {', '.join(MODELS)}")
    import torch

    torch.set_num_threads(1)
    for name in names:
        model = make_model(name, args.classes, args.seed)
        meta = {"architecture": name, "seed": args.seed, "exporter": f"torch {torch.__version__}"}
        if args.pretrain_steps > 0 and args.data_dir is not None:
            meta["pretraining"] = pretrain(model, args.task, args.data_dir, args.pretrain_steps, args.seed)
        path = export(model, args.out / f"{name}.onnx", meta)
        n = sum(p.numel() for p in model.parameters())
        print(f"{path}: {n} parameters, {path.stat().st_size} bytes; {json.dumps(meta)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
