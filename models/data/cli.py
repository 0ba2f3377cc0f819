"""The ``halo-agent data`` commands: ``data list`` (what a data directory holds), ``data fetch``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Sequence

from .catalogue import CATALOGUE
from .errors import DataError
from .fetch import EXIT_ERROR, fetch_dataset, sources
from .inventory import dataset_status
from .paths import ENV_DATA_DIR, ENV_MIRROR, data_dir_origin, resolve_data_dir, resolve_mirror
from .tasks import list_tasks

_DATA_DIR_HELP = (f"data directory (default: ${ENV_DATA_DIR}, else ~/.local/share/halo-agent); "
                  "same layout as the project's shared data folder")
_MIRROR_HELP = (f"base URL or folder laid out like a data directory (default: ${ENV_MIRROR}); "
                "without it files come from each dataset's upstream source")


def add_commands(subparsers: Any) -> None:
    """Add the ``data`` command (``fetch``, ``list``) to an argparse subparsers object.
    Each leaf sets ``func(namespace) -> int`` (the exit code)."""
    names = ", ".join(sorted(CATALOGUE))
    data = subparsers.add_parser(
        "data", help="list and fetch datasets",
        description="Datasets for the adaptation tasks. Nothing is downloaded unless you "
                    "run 'data fetch'.")
    data.set_defaults(func=lambda ns: _usage(data))
    sub = data.add_subparsers(dest="data_command", metavar="{fetch,list,import}")

    fetch = sub.add_parser(
        "fetch", help="download a dataset (verified by checksum) into the data directory",
        description=f"Download dataset NAME ({names}) and verify every file's checksum. "
                    "Exit code 0: complete; 3: usable but partial; 1: error.")
    fetch.add_argument("name", metavar="NAME", help=f"dataset: {names}")
    fetch.add_argument("--data-dir", dest="data_dir", default=None, help=_DATA_DIR_HELP)
    fetch.add_argument("--mirror", default=None, help=_MIRROR_HELP)
    fetch.add_argument("--force", action="store_true",
                       help="download again even when the files are present")
    fetch.add_argument("--timeout", dest="timeout_s", type=float, default=60.0,
                       help="network timeout per connect/read, seconds (default 60)")
    fetch.set_defaults(func=cmd_fetch)

    lst = sub.add_parser("list", help="show which datasets are present, partial or missing",
                         description="Show each dataset's state, files, path and source.")
    lst.add_argument("--data-dir", dest="data_dir", default=None, help=_DATA_DIR_HELP)
    lst.add_argument("--mirror", default=None, help=_MIRROR_HELP)
    lst.add_argument("--json", action="store_true", help="print JSON instead of text")
    lst.set_defaults(func=cmd_list)
    from .user_cli import add_import_command

    add_import_command(sub, _DATA_DIR_HELP)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def cmd_fetch(ns: argparse.Namespace) -> int:
    """Run ``data fetch``; print a summary on stdout, errors on stderr; return the exit code."""
    try:
        report = fetch_dataset(ns.name, ns.data_dir, mirror=ns.mirror, force=ns.force,
                               timeout_s=ns.timeout_s)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    print(f"{report.dataset}: {report.status} in {report.folder} (source: {report.source})")
    for label, items in (("installed", report.installed), ("already present", report.skipped),
                         ("not available", report.unavailable)):
        for item in items:
            print(f"  {label}: {item}")
    if report.status == "partial":
        print(f"  {report.dataset} is usable but incomplete (exit code {report.exit_code})")
    elif report.status == "missing":
        print(f"  {report.dataset} is still not usable", file=sys.stderr)
    return report.exit_code


def inventory(data_dir: str | None = None, mirror: str | None = None) -> Dict[str, Any]:
    """What ``data list --json`` prints: the data directory, the mirror, and per dataset
    its status, folder, files (status, path, accepted names), sources and tasks."""
    root = resolve_data_dir(data_dir)
    mirror_url = resolve_mirror(mirror)
    tasks_by_ds: Dict[str, List[str]] = {}
    for spec in list_tasks():
        tasks_by_ds.setdefault(spec.dataset, []).append(spec.name)
    datasets = []
    for name in sorted(CATALOGUE):
        info = CATALOGUE[name]
        st = dataset_status(info, root)
        datasets.append({
            "name": name, "title": info.title, "status": st.status, "path": str(st.folder),
            "files": [{"key": f.key, "status": f.status, "required": f.required,
                       "path": str(f.path) if f.path else None, "accepts": list(f.names)}
                      for f in st.files],
            "sources": sources(info, mirror_url), "homepage": info.homepage,
            "license": info.license, "tasks": tasks_by_ds.get(name, []),
        })
    builtin = [s.name for s in list_tasks() if not s.needs_files]
    return {"data_dir": str(root), "data_dir_from": data_dir_origin(data_dir),
            "mirror": mirror_url, "datasets": datasets, "builtin_tasks": builtin}


def cmd_list(ns: argparse.Namespace) -> int:
    """Run ``data list``: text (or JSON with ``--json``) on stdout; returns 0."""
    inv = inventory(ns.data_dir, ns.mirror)
    if ns.json:
        print(json.dumps(inv, indent=2))
        return 0
    print(f"data directory: {inv['data_dir']} (from {inv['data_dir_from']})")
    print(f"mirror: {inv['mirror'] or 'none (files come from upstream sources)'}")
    for ds in inv["datasets"]:
        print(f"\n{ds['name']:<14} {ds['status']:<8} {ds['path']}")
        for f in ds["files"]:
            where = os.path.basename(f["path"]) if f["path"] else " or ".join(f["accepts"])
            opt = "" if f["required"] else " (optional)"
            print(f"    {f['status']:<8} {where}{opt}")
        for src in ds["sources"]:
            print(f"    from: {src}")
        if ds["tasks"]:
            print(f"    tasks: {', '.join(ds['tasks'])}")
    print(f"\nbuilt-in tasks (no files needed): {', '.join(inv['builtin_tasks'])}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point (``python -m models.data.cli data list``); returns the
    exit code."""
    parser = argparse.ArgumentParser(prog="halo-agent")
    add_commands(parser.add_subparsers(dest="command", metavar="{data}"))
    ns = parser.parse_args(argv)
    if not hasattr(ns, "func"):
        parser.print_help(sys.stderr)
        return 2
    return int(ns.func(ns))


if __name__ == "__main__":
    sys.exit(main())
