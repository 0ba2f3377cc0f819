"""``halo-agent data import FILE --name NAME``: store a user's own dataset (the same
checks, split and store as ``POST /v1/datasets``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import DataError
from .paths import resolve_data_dir


def add_import_command(sub: Any, data_dir_help: str) -> None:
    """Add ``import`` to the ``data`` subparsers."""
    from .user import FORMAT_HELP

    p = sub.add_parser(
        "import", help="store your own dataset (.npz, .csv, or images by class) for adaptation",
        description=f"Validate, split (seeded, stratified) and normalise a dataset, and store it "
                    f"content-addressed in the data directory. Accepts: {FORMAT_HELP}. A job "
                    "names it by the id this prints (dataset_id).")
    p.add_argument("path", metavar="FILE", type=Path, help="a .npz, .csv or .zip file, or a folder")
    p.add_argument("--name", required=True, help="a name for the dataset (1-64 characters)")
    p.add_argument("--data-dir", dest="data_dir", default=None, help=data_dir_help)
    p.add_argument("--label-column", default="label", help="CSV: the class column (default: label)")
    p.add_argument("--missing", choices=["refuse", "mean"], default="refuse",
                   help="CSV: refuse rows with missing values (default) or impute the column mean")
    p.add_argument("--split-column", default=None,
                   help="CSV: a column of train/test giving your own split")
    p.add_argument("--image-size", default=None, metavar="HxW",
                   help="images: resize every image to HxW pixels (required for images)")
    p.add_argument("--channels", type=int, choices=[1, 3], default=3,
                   help="images: 1 (grey) or 3 (RGB, default)")
    p.add_argument("--test-fraction", type=float, default=0.25,
                   help="share of each class held out for testing (default: 0.25)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (default: 0)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=cmd_import)


def _progress(done: int, total: int) -> None:
    end = "\n" if done == total else ""
    print(f"\rreading images: {done}/{total}", end=end, file=sys.stderr, flush=True)


def cmd_import(ns: argparse.Namespace) -> int:
    """Run ``data import``; 0 on success, 2 when the data is refused (one line on stderr)."""
    from .user import ImportOptions, import_dataset, read_path

    opts = ImportOptions(name=ns.name, label_column=ns.label_column, missing=ns.missing,
                         split_column=ns.split_column, image_size=ns.image_size,
                         channels=ns.channels, test_fraction=ns.test_fraction, seed=ns.seed)
    try:
        opts.check()
        fmt, raw = read_path(ns.path, opts, progress=_progress if sys.stderr.isatty() else None)
        manifest, created = import_dataset(resolve_data_dir(ns.data_dir), fmt, raw, opts,
                                           ns.path.name)
    except DataError as e:
        print(f"halo-agent data import: error: {e}", file=sys.stderr)
        return 2
    if ns.json:
        print(json.dumps(manifest, indent=1))
        return 0
    state = "stored" if created else "already stored"
    print(f"{manifest['id']}  {state}: {manifest['name']!r} ({manifest['format']}), input "
          f"{tuple(manifest['input_shape'])}, {manifest['num_classes']} classes "
          f"({', '.join(manifest['class_names'][:10])}), {manifest['n_train']} train / "
          f"{manifest['n_test']} test ({manifest['split']['kind']} split)")
    for note in manifest.get("notes", []):
        print(f"  note: {note}")
    return 0
