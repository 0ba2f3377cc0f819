"""``halo-agent data list`` and ``data fetch`` through the argparse front end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from models.data.cli import add_commands, main


def test_list_shared(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list", "--data-dir", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert f"data directory: {shared_data.resolve()} (from argument)" in out
    lines = {ln.split()[0]: ln.split()[1] for ln in out.splitlines()
             if ln and not ln.startswith(" ") and len(ln.split()) == 3}
    # har: the shared copy has UCI HAR's labels but not its feature files
    assert lines == {"cifar10": "partial", "fashion-mnist": "present", "gsad": "partial",
                     "har": "missing", "mnist": "present", "thyroid": "present"}
    assert "missing  train/X_train.txt.gz or train/X_train.txt" in out
    assert "partial  test_batch_first1000.bin.gz" in out
    assert "missing  batch7.dat.gz or batch7.dat (optional)" in out
    assert "from: https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz" \
        in out
    assert "tasks: tdp-female, tdp-male" in out
    assert "built-in tasks (no files needed): synthetic-a, synthetic-b" in out


def test_list_json_empty_dir_and_mirror(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list", "--data-dir", str(tmp_path), "--json"]) == 0
    inv = json.loads(capsys.readouterr().out)
    assert inv["data_dir"] == str(tmp_path) and inv["mirror"] is None
    assert {d["name"]: d["status"] for d in inv["datasets"]} == dict.fromkeys(
        ["cifar10", "fashion-mnist", "gsad", "har", "mnist", "thyroid"], "missing")
    gsad = next(d for d in inv["datasets"] if d["name"] == "gsad")
    assert gsad["sources"][0].startswith("https://archive.ics.uci.edu/")
    assert gsad["files"][6] == {"key": "batch7", "status": "missing", "required": False,
                                "path": None, "accepts": ["batch7.dat.gz", "batch7.dat"]}
    assert main(["data", "list", "--data-dir", str(tmp_path), "--json",
                 "--mirror", "http://lab.example/halo"]) == 0
    inv = json.loads(capsys.readouterr().out)
    mnist = next(d for d in inv["datasets"] if d["name"] == "mnist")
    assert inv["mirror"] == "http://lab.example/halo/"
    assert mnist["sources"] == ["http://lab.example/halo/mnist/"]


def test_fetch_exit_codes(shared_mirror: str, mirror: str, mirror_root: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    dest = str(tmp_path / "data")
    assert main(["data", "fetch", "thyroid", "--data-dir", dest, "--mirror", shared_mirror]) == 0
    assert "installed: TDD-Female.csv.gz" in capsys.readouterr().out
    assert main(["data", "fetch", "gsad", "--data-dir", dest, "--mirror", shared_mirror]) == 3
    out = capsys.readouterr().out
    assert "gsad: partial" in out and "not available: batch7" in out
    # a corrupt file on the mirror: exit 1, the error names the file and both digests
    (mirror_root / "mnist").mkdir()
    (mirror_root / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"corrupt")
    assert main(["data", "fetch", "mnist", "--data-dir", dest, "--mirror", mirror]) == 1
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and "train-images-idx3-ubyte.gz" in err
    assert main(["data", "fetch", "imagenet", "--data-dir", dest]) == 1
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err


def test_add_commands_into_another_parser(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="halo-agent")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve")
    add_commands(sub)
    ns = parser.parse_args(["data", "fetch", "mnist", "--force", "--mirror", "http://x/",
                            "--data-dir", str(tmp_path)])
    assert ns.name == "mnist" and ns.force and ns.mirror == "http://x/" and callable(ns.func)
    ns = parser.parse_args(["data", "list", "--json"])
    assert ns.json and ns.data_dir is None and callable(ns.func)
    assert parser.parse_args(["data"]).func(ns) == 2  # bare `data` prints usage
