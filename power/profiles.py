"""Board profiles for the CPU-utilisation power estimate, each figure with its source.

Model: ``P = idle_w + idle_w_per_core * n_cpus + busy_w_per_core * busy_cpus``, where
``busy_cpus`` = whole-machine CPU utilisation (0..1) x ``n_cpus`` (logical CPUs as the
OS counts them). These are coarse figures for boards without a meter; every number the
estimate produces is labelled ``estimated`` with the profile name.

Default profile: ``generic-x86`` (x86 and unknown architectures) or ``generic-arm``
(ARM boards that are not recognised); see :data:`DEFAULT_PROFILE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

POWERJOULAR = ("joular/powerjoular src/raspberry_pi_cpu_formula.adb "
               "(linear model, P = a*U + b, U in 0..1)")
JTOP_FIXTURE = "rbonghi/jetson_stats tests/tegrastats (tegrastats sample lines)"


@dataclass(frozen=True)
class EstimateProfile:
    """Idle and per-busy-CPU watts of one kind of board, and where they come from."""

    name: str
    idle_w: float
    busy_w_per_core: float
    idle_w_per_core: float = 0.0
    cores: int | None = None
    description: str = ""
    sources: Tuple[str, ...] = ()

    def power_w(self, busy_cores: float, n_cpus: int) -> Tuple[float, float]:
        """``(idle part W, busy part W)`` for ``busy_cores`` busy out of ``n_cpus``."""
        return self.idle_w + self.idle_w_per_core * n_cpus, self.busy_w_per_core * busy_cores


def _pj(name: str, platform: str, slope_w: float, intercept_w: float, cores: int,
        description: str) -> EstimateProfile:
    """A Raspberry Pi profile from a PowerJoular linear model (whole-board, 4 cores)."""
    return EstimateProfile(
        name, round(intercept_w, 3), round(slope_w / cores, 3), 0.0, cores, description,
        (f"{POWERJOULAR}, platform {platform}: P = {slope_w} * U + {intercept_w} W; "
         f"idle_w = b, busy_w_per_core = a / {cores} cores",))


PROFILES: Dict[str, EstimateProfile] = {p.name: p for p in (
    EstimateProfile(
        "jetson-tx2", 1.876, 0.909, 0.0, 6,
        "Jetson TX2 module (VDD_IN), 2 Denver + 4 A57 cores",
        ("idle_w: VDD_IN 1876 mW on an idle TX2 (CPUs 0-5 %), L4T R32 tegrastats line quoted "
         "in docs/references.md §3.2",
         f"busy_w_per_core: VDD_CPU 2209 mW with 2.43 busy cores (CPU 55,14,27,55,47,45 % at "
         f"2.0 GHz) in the TX2 line of {JTOP_FIXTURE}: 2.209 W / 2.43 = 0.909 W; the CPU rail "
         "includes its own idle share, so this is on the high side")),
    EstimateProfile(
        "jetson-nano", 3.442, 0.921, 0.0, 4,
        "Jetson Nano module (POM_5V_IN), 4 A57 cores; also the Nano 2GB, which has no INA3221",
        (f"idle_w: POM_5V_IN 4520 mW minus POM_5V_CPU 1078 mW (GPU rail 0 mW) in the Nano line "
         f"of {JTOP_FIXTURE}",
         "busy_w_per_core: POM_5V_CPU 1078 mW with 1.17 busy cores (CPU 30,33,28,26 %) in the "
         "same line: 1.078 W / 1.17 = 0.921 W")),
    _pj("raspberry-pi-3", "rbp3b+1.3", 3.298332817557656, 2.002229902630705, 4,
        "Raspberry Pi 3 Model B+"),
    _pj("raspberry-pi-4", "rbp4b1.2-64", 4.534426720546654, 2.2856926184722672, 4,
        "Raspberry Pi 4 Model B (rev 1.2, 64-bit OS)"),
    _pj("raspberry-pi-400", "rbp4001.0-64", 5.025368568347057, 1.8221330203847232, 4,
        "Raspberry Pi 400 (64-bit OS)"),
    _pj("raspberry-pi-5", "rbp51.0-64", 3.457855981342954, 4.403192179893827, 4,
        "Raspberry Pi 5 (64-bit OS)"),
    EstimateProfile(
        "generic-arm", 2.286, 1.134, 0.0, 4,
        "unrecognised ARM board: assumed to be like a Raspberry Pi 4",
        (f"the raspberry-pi-4 figures: {POWERJOULAR}, platform rbp4b1.2-64",)),
    EstimateProfile(
        "generic-x86", 0.0, 2.76, 0.74, None,
        "generic x86 laptop, desktop or VM: per logical CPU (vCPU) figures",
        ("idle_w_per_core 0.74 W and busy_w_per_core 3.5 - 0.74 = 2.76 W: Cloud Carbon "
         "Footprint methodology, Appendix I, AWS 'Average Minimum Watts (0% CPU Utilization): "
         "0.74' and 'Average Maximum Watts (100% CPU Utilization): 3.5' per vCPU, derived from "
         "SPECpower results (cloud-carbon-footprint/cloud-carbon-footprint "
         "microsite/docs/Methodology.md)",)),
)}

#: Used when the board is not recognised on x86 (and on unknown architectures).
DEFAULT_PROFILE = "generic-x86"
#: Used when the board is not recognised on 32/64-bit ARM.
DEFAULT_ARM_PROFILE = "generic-arm"

# (substring of the lower-cased board model, profile); first match wins.
_MODEL_RULES = (
    ("raspberry pi 5", "raspberry-pi-5"),
    ("raspberry pi 400", "raspberry-pi-400"),
    ("raspberry pi 4", "raspberry-pi-4"),
    ("compute module 4", "raspberry-pi-4"),
    ("raspberry pi 3", "raspberry-pi-3"),
    ("orin", None),  # before "nano": the Orin Nano is not a Jetson Nano
    ("xavier", None),
    ("tx2", "jetson-tx2"),
    ("quill", "jetson-tx2"),  # L4T board names of the TX2 family
    ("storm", "jetson-tx2"),
    ("lightning", "jetson-tx2"),
    ("p3310", "jetson-tx2"),
    ("jetson nano", "jetson-nano"),
    ("jetson-nano", "jetson-nano"),
    ("p3450", "jetson-nano"),
)


def pick_profile(board_model: str | None, arch: str) -> Tuple[str, str]:
    """``(profile name, reason)`` for a board model string and CPU architecture."""
    model = (board_model or "").lower()
    for needle, name in _MODEL_RULES:
        if needle in model:
            if name is not None:
                return name, f"board model {board_model!r}"
            break
    is_arm = arch.startswith(("arm", "aarch64"))
    default = DEFAULT_ARM_PROFILE if is_arm else DEFAULT_PROFILE
    what = f"board model {board_model!r} has no profile" if board_model else "no board model"
    return default, f"{what}; default for {arch or 'unknown'} architecture"
