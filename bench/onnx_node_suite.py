"""The ONNX backend node test cases of every op the importer claims, run through its forward.

``onnx.backend.test.case.node.collect_testcases()`` is the ONNX project's own
conformance suite: each case is a one-node model with inputs and expected outputs.  For
every case whose node is a claimed op: the first input becomes the graph input (NCHW for
rank 4, fed to the plan as NHWC and its output turned back), the other inputs become
initializers (as weights, shapes and bounds are in an exported model), the graph is
loaded by :func:`models.onnx.graph.build_plan` and run, and the output is compared with
the case's own tolerances (``rtol``, ``atol``).  A case the importer refuses at load
(an attribute or input kind it does not support) is *skipped*, with the load error as
its reason; so are cases that are not float32, older than opset 13, or have no batch
axis.  A case that loads and disagrees *fails*.

``python -m bench.onnx_node_suite --out docs/onnx-node-tests.md`` writes the table.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Dict, List

import numpy as np

from models.onnx.graph import MIN_OPSET, SUPPORTED_OPS, OnnxModelError, build_plan, opset_of


def _cases():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case.node import collect_testcases

        # op_type None: every case; onnx <= 1.19 (the last for Python 3.9) has no default,
        # and a name there filters only the first call (its modules are imported once)
        return collect_testcases(None)


def _as_single_input(case):
    """The case's model with inputs 1.. as initializers, and the first input's data."""
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    inputs, _ = case.data_sets[0]
    g = model.graph
    names = [i.name for i in g.input]
    for name, arr in zip(names[1:], inputs[1:]):
        g.initializer.append(numpy_helper.from_array(np.asarray(arr), name))
    keep = g.input[0]
    del g.input[1:]
    assert g.input[0] is keep or g.input[0].name == names[0]
    return model, inputs[0]


def run_case(case) -> Dict[str, object]:
    """One case: ``{case, op, status (passed/skipped/failed), reason, max_abs_diff}``."""
    op = case.model.graph.node[0].op_type
    row = {"case": case.name, "op": op, "status": "skipped", "reason": "", "max_abs_diff": None}
    opset = opset_of(case.model)
    inputs, outputs = case.data_sets[0]
    if opset < MIN_OPSET:
        row["reason"] = f"opset {opset} < {MIN_OPSET} (older semantics)"
        return row
    if op == "Constant":
        row["reason"] = "no input: a Constant node is folded at load, there is nothing to run"
        return row
    x = np.asarray(inputs[0])
    if x.dtype != np.float32:
        row["reason"] = f"input is {x.dtype}, not float32"
        return row
    if x.ndim < 1:
        row["reason"] = "a scalar input has no batch axis"
        return row
    if len(outputs) != 1:
        row["reason"] = f"{len(outputs)} outputs (training-mode or index outputs are not supported)"
        return row
    model, x = _as_single_input(case)
    try:
        steps, _, out, layout, _ = build_plan(model, case.name, node_test=True)
    except OnnxModelError as e:
        msg = str(e).split(": ", 1)[1] if ": " in str(e) else str(e)
        row["reason"] = msg.split(": ", 1)[1] if msg.startswith("node ") else msg
        return row
    name = model.graph.input[0].name
    vals = {name: np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x}
    for s in steps:
        vals[s.output] = s.forward([vals[v] for v in s.inputs], {})[0]
    y = vals[out]
    if layout == "nhwc" and y.ndim == 4:
        y = y.transpose(0, 3, 1, 2)
    want = np.asarray(outputs[0])
    if y.shape != want.shape:
        row.update(status="failed", reason=f"shape {y.shape} != expected {want.shape}")
        return row
    diff = float(np.max(np.abs(y.astype(np.float64) - want))) if want.size else 0.0
    row["max_abs_diff"] = diff
    ok = np.allclose(y, want, rtol=case.rtol, atol=case.atol)
    row.update(status="passed" if ok else "failed",
               reason="" if ok else f"max |diff| {diff:.3g} above rtol {case.rtol}, atol {case.atol}")
    return row


def run_suite() -> List[Dict[str, object]]:
    """Every node case of a claimed op (one-node models), sorted by op and case name."""
    rows = []
    for case in _cases():
        nodes = case.model.graph.node
        if len(nodes) == 1 and nodes[0].op_type in SUPPORTED_OPS and nodes[0].domain in ("", "ai.onnx"):
            rows.append(run_case(case))
    return sorted(rows, key=lambda r: (r["op"], r["case"]))


def markdown(rows: List[Dict[str, object]]) -> str:
    import onnx

    counts = Counter((r["op"], r["status"]) for r in rows)
    ops = sorted({r["op"] for r in rows})
    lines = ["# ONNX backend node tests of the importer's ops", "",
             f"Generated by `python -m bench.onnx_node_suite --out docs/onnx-node-tests.md` with onnx "
             f"{onnx.__version__}; checked by `tests/onnx/test_node_suite.py`. Cases are "
             "`onnx.backend.test.case.node.collect_testcases()`; a case is skipped when the importer "
             "refuses it at load (the reason is the load error) or it is outside the float32, "
             "opset >= 13, batch-first scope.", "",
             "| op | passed | skipped | failed |", "|---|---:|---:|---:|"]
    for op in ops:
        lines.append(f"| {op} | {counts[(op, 'passed')]} | {counts[(op, 'skipped')]} | "
                     f"{counts[(op, 'failed')]} |")
    lines += ["", "## Every case", "", "| op | case | result | max abs diff / reason |", "|---|---|---|---|"]
    for r in rows:
        detail = f"{r['max_abs_diff']:.2g}" if r["status"] == "passed" else str(r["reason"]).replace("|", "/")
        lines.append(f"| {r['op']} | `{r['case']}` | {r['status']} | {detail} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.onnx_node_suite", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    args = ap.parse_args(argv)
    rows = run_suite()
    text = markdown(rows)
    if args.out:
        args.out.write_text(text)
    c = Counter(r["status"] for r in rows)
    print(f"{len(rows)} cases: {c['passed']} passed, {c['skipped']} skipped, {c['failed']} failed")
    for r in rows:
        if r["status"] == "failed":
            print(f"FAILED {r['case']}: {r['reason']}")
    return 1 if c["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
