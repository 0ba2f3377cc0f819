"""``halo-agent model inspect FILE``: what a model file holds and whether it can be adapted."""

from __future__ import annotations

import json
import sys


def add_commands(sub) -> None:
    p = sub.add_parser("model", help="inspect model files",
                       description="Inspect a model file before adapting it.")
    msub = p.add_subparsers(dest="model_command", metavar="SUBCOMMAND")
    q = msub.add_parser("inspect", help="ops, trainable layers, parameters, input shape, support",
                        description="Print an ONNX file's ops, trainable layers, parameter counts, "
                                    "input shape and whether every op is supported by the importer.")
    q.add_argument("file", help="an .onnx file")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(func=cmd_inspect)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def cmd_inspect(args) -> int:
    from models.onnx import inspect_onnx

    info = inspect_onnx(args.file)
    if args.json:
        json.dump(info, sys.stdout)
        sys.stdout.write("\n")
        return 0 if info["supported"] else 1
    print(f"{info['path']}: {info['bytes']} bytes, ONNX IR {info['ir_version']}, opset {info['opset']}, "
          f"producer {info['producer'] or '?'}")
    for io in ("inputs", "outputs"):
        for v in info[io]:
            print(f"  {io[:-1]} {v['name']}: {v['shape']}")
    print(f"  nodes {info['nodes']}: " + ", ".join(f"{k} x{v}" for k, v in info["ops"].items()))
    for u in info["unsupported"]:
        print(f"  unsupported: node {u['node']!r} op {u['op_type']}")
    if not info["supported"]:
        print(f"not adaptable: {info['error']}")
        return 1
    h, w, c = (info["input_shape_nhwc"] + [None, None, None])[:3]
    shape = f"{c}x{h}x{w} (CxHxW)" if len(info["input_shape_nhwc"]) == 3 else str(info["input_shape_nhwc"])
    print(f"  input {shape}, {info['num_classes']} classes")
    print(f"  trainable layers {len(info['trainable_layers'])}, parameters {info['n_params']} "
          f"({info['n_params_bias_only']} with --sparsity bias)")
    for k, layer in enumerate(info["trainable_layers"]):
        print(f"    {k:>3} {layer['op_type']:<20} {layer['name']:<40} {layer['params']:>9}")
    print("every op is supported")
    return 0
