"""The run record is read from the board's own files, here a fake tree with their names."""

from __future__ import annotations

from pathlib import Path

from power.runrecord import record_line, run_record
from power.testing import write_board_model

ORIN_NANO = "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def jetson_tree(tmp: Path, pinned: bool = True) -> Path:
    """An Orin Nano's files: L4T R36.4.3 / JetPack 6.2, nvpmodel mode 2, six CPUs."""
    sysfs = tmp / "sys"
    write_board_model(sysfs, ORIN_NANO)
    _write(tmp / "etc/nv_tegra_release",
           "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
           "DATE: Wed Jan  8 01:49:37 UTC 2025\n# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n")
    _write(tmp / "var/lib/dpkg/status",
           "Package: nvidia-l4t-core\nStatus: install ok installed\nVersion: 36.4.3-20250107174145\n\n"
           "Package: nvidia-jetpack\nStatus: install ok installed\nArchitecture: arm64\n"
           "Version: 6.2+b77\n\n")
    _write(tmp / "var/lib/nvpmodel/status", "pmode:0002 fmode:quiet\n")
    _write(tmp / "etc/nvpmodel.conf",
           "< POWER_MODEL ID=0 NAME=15W >\nCPU_ONLINE CORE_0 1\n"
           "< POWER_MODEL ID=1 NAME=25W >\n< POWER_MODEL ID=2 NAME=MAXN_SUPER >\n"
           "< PM_CONFIG DEFAULT=2 >\n")
    for i in range(6):
        cpu = sysfs / f"devices/system/cpu/cpu{i}/cpufreq"
        _write(cpu / "scaling_governor", "schedutil\n")
        _write(cpu / "scaling_max_freq", "1728000\n")
        _write(cpu / "scaling_min_freq", "1728000\n" if pinned else "729600\n")
    _write(sysfs / "devices/system/cpu/online", "0-5\n")  # not a cpuN folder: ignored
    for i, (kind, milli) in enumerate((("cpu-thermal", "48500"), ("gpu-thermal", "46968"))):
        _write(sysfs / f"class/thermal/thermal_zone{i}/type", kind + "\n")
        _write(sysfs / f"class/thermal/thermal_zone{i}/temp", milli + "\n")
    return sysfs


def test_jetson_record_from_its_files(tmp_path):
    rec = run_record(jetson_tree(tmp_path), threads=1)
    assert rec["board_model"] == ORIN_NANO
    assert rec["l4t"] == "R36.4.3" and rec["l4t_line"].startswith("# R36 (release)")
    assert rec["jetpack"] == "6.2+b77"
    assert rec["nvpmodel"] == {"id": 2, "name": "MAXN_SUPER"}
    assert rec["governors"] == {f"cpu{i}": "schedutil" for i in range(6)}
    assert rec["clocks_pinned"] is True
    assert rec["temperatures_c_at_start"] == {"cpu-thermal": 48.5, "gpu-thermal": 46.968}
    assert rec["threads"] == 1 and rec["python"] and rec["numpy"]
    line = record_line(rec)
    for part in (ORIN_NANO, "L4T R36.4.3, JetPack 6.2+b77", "nvpmodel 2 (MAXN_SUPER)",
                 "clocks pinned", "governor schedutil", "cpu-thermal 48.5 C"):
        assert part in line


def test_unpinned_clocks_and_unknown_mode_name(tmp_path):
    sysfs = jetson_tree(tmp_path, pinned=False)
    (tmp_path / "etc/nvpmodel.conf").unlink()
    rec = run_record(sysfs)
    assert rec["clocks_pinned"] is False
    assert rec["nvpmodel"] == {"id": 2, "name": None}
    assert "clocks not pinned" in record_line(rec)


def test_a_bare_tree_gives_nones_not_errors(tmp_path):
    rec = run_record(tmp_path / "sys")
    for key in ("board_model", "l4t", "jetpack", "nvpmodel", "governors", "clocks_pinned",
                "temperatures_c_at_start"):
        assert rec[key] is None, key
    assert "board model not readable" in record_line(rec)


def test_this_machine_record_has_the_software():
    rec = run_record()
    assert rec["python"].count(".") == 2 and rec["numpy"]
    assert isinstance(rec["blas"], list)
