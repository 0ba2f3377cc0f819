"""RuiDeng UM24C/UM25C/UM34C protocol: the 130-byte reply frame, parsed and built.

Pure functions, no I/O (the serial transport is in :mod:`power.um_meter`). Layout, all
big-endian (rfinnie/rdserialtool ``rdserial/um/__init__.py``; sigrok
``src/hardware/rdtech-um/protocol.c``; docs/references.md §3.4):

====== ==== ============================= =========================================
offset size field                         scale
====== ==== ============================= =========================================
0      2    model id                      0x0963 UM24C, 0x09C9 UM25C, 0x0D4C UM34C
2      2    bus voltage                   0.01 V (UM25C 0.001 V)
4      2    current                       0.001 A (UM25C 0.0001 A)
6      4    power                         0.001 W
10/12  2/2  temperature                   1 degC / 1 degF
14     2    selected data group           0..9
16+8g  4+4  group g charge / energy       0.001 Ah / 0.001 Wh
96/98  2/2  D+ / D- voltage               0.01 V
100    2    charging mode                 enum
102    4    threshold-recorded charge     0.001 Ah
106    4    threshold-recorded energy     0.001 Wh
110    2    record threshold              0.01 A
112    4    recorded time                 1 s
116    2    recording flag
118    2    screen timeout                1 min
120    2    brightness                    0..5
122    4    load resistance               0.1 ohm
126    2    current screen
128    2    end marker                    0xFFF1 (UM24C, UM25C); UM34C: byte 129 is the
                                          XOR of the bytes at UM34C_XOR_POSITIONS
====== ==== ============================= =========================================
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Dict, List, Tuple

from power.errors import FrameError

FRAME_LEN = 130
REQUEST = b"\xf0"  # "send me one frame"
BAUD_RATE = 9600
END_MARKER = 0xFFF1
UM34C_XOR_POSITIONS = (1, 3, 7, 9, 15, 17, 19, 23, 31, 39, 41, 45, 49, 53, 55, 57, 59, 63, 67,
                       69, 73, 79, 83, 89, 97, 99, 109, 111, 113, 119, 121, 127)


@dataclass(frozen=True)
class UmModel:
    """Per-model constants: id in bytes 0..1, field scales, checksum kind."""

    name: str
    model_id: int
    voltage_scale_v: float
    current_scale_a: float
    checksum: str  # "fff1" or "xor"


MODELS: Dict[str, UmModel] = {
    "um24c": UmModel("um24c", 0x0963, 0.01, 0.001, "fff1"),
    "um25c": UmModel("um25c", 0x09C9, 0.001, 0.0001, "fff1"),
    "um34c": UmModel("um34c", 0x0D4C, 0.01, 0.001, "xor"),
}
MODEL_BY_ID: Dict[int, UmModel] = {m.model_id: m for m in MODELS.values()}


@dataclass(frozen=True)
class UmReading:
    """Every field of one frame, in SI units. ``power_w`` is V x I at the frame's
    resolution; ``reported_power_w`` is the meter's own 1 mW figure."""

    model: str
    voltage_v: float
    current_a: float
    power_w: float
    reported_power_w: float
    temperature_c: int
    temperature_f: int
    data_group: int
    groups: Tuple[Tuple[float, float], ...]  # (charge_ah, energy_wh) per group 0..9
    dplus_v: float
    dminus_v: float
    charging_mode: int
    record_charge_ah: float
    record_energy_wh: float
    record_threshold_a: float
    record_s: int
    recording: bool
    screen_timeout_min: int
    brightness: int
    load_resistance_ohm: float
    screen: int


def um34c_checksum(frame: bytes) -> int:
    """XOR of the UM34C checksum positions (compared with byte 129)."""
    value = 0
    for pos in UM34C_XOR_POSITIONS:
        value ^= frame[pos]
    return value


def model_of(frame: bytes) -> UmModel:
    """The model a frame announces in bytes 0..1; ``FrameError`` when unknown."""
    if len(frame) < 2:
        raise FrameError(f"frame of {len(frame)} bytes has no model id")
    model_id = struct.unpack_from(">H", frame, 0)[0]
    try:
        return MODEL_BY_ID[model_id]
    except KeyError:
        raise FrameError(f"unknown UM model id 0x{model_id:04X}") from None


def checksum_ok(frame: bytes, model: UmModel) -> bool:
    """End marker (UM24C/UM25C) or XOR checksum (UM34C) matches."""
    if len(frame) != FRAME_LEN:
        return False
    if model.checksum == "xor":
        return um34c_checksum(frame) == frame[129]
    return struct.unpack_from(">H", frame, 128)[0] == END_MARKER


def parse_frame(frame: bytes, model: str | None = None) -> UmReading:
    """Decode one 130-byte frame; ``model`` (``"um25c"``...) must match when given."""
    if len(frame) != FRAME_LEN:
        raise FrameError(f"UM frame must be {FRAME_LEN} bytes, got {len(frame)}")
    found = model_of(frame)
    if model is not None and found.name != model.lower():
        raise FrameError(f"frame is from a {found.name}, expected {model.lower()}")
    if not checksum_ok(frame, found):
        tail = frame[128:130].hex()
        raise FrameError(
            f"{found.name} frame fails its end marker/checksum (bytes 128..129 = {tail})")
    def u16(off: int) -> int:
        return struct.unpack_from(">H", frame, off)[0]

    def u32(off: int) -> int:
        return struct.unpack_from(">I", frame, off)[0]

    voltage_v = u16(2) * found.voltage_scale_v
    current_a = u16(4) * found.current_scale_a
    groups = tuple((u32(16 + 8 * g) / 1e3, u32(20 + 8 * g) / 1e3) for g in range(10))
    return UmReading(
        model=found.name, voltage_v=voltage_v, current_a=current_a,
        power_w=voltage_v * current_a, reported_power_w=u32(6) / 1e3,
        temperature_c=u16(10), temperature_f=u16(12), data_group=u16(14), groups=groups,
        dplus_v=u16(96) / 100, dminus_v=u16(98) / 100, charging_mode=u16(100),
        record_charge_ah=u32(102) / 1e3, record_energy_wh=u32(106) / 1e3,
        record_threshold_a=u16(110) / 100, record_s=u32(112), recording=bool(u16(116)),
        screen_timeout_min=u16(118), brightness=u16(120), load_resistance_ohm=u32(122) / 10,
        screen=u16(126),
    )


def build_frame(model: str, voltage_v: float, current_a: float, *, temperature_c: int = 25,
                data_group: int = 0, record_energy_wh: float = 0.0, record_s: int = 0,
                dplus_v: float = 0.0, dminus_v: float = 0.0) -> bytes:
    """Encode a frame as the meter sends it (for simulators and round-trip tests)."""
    spec = MODELS[model.lower()]
    frame = bytearray(FRAME_LEN)
    raw_v = int(round(voltage_v / spec.voltage_scale_v))
    raw_i = int(round(current_a / spec.current_scale_a))
    if not (0 <= raw_v <= 0xFFFF and 0 <= raw_i <= 0xFFFF):
        raise FrameError(f"{voltage_v} V / {current_a} A out of range for {spec.name}")
    power_mw = int(round(raw_v * spec.voltage_scale_v * raw_i * spec.current_scale_a * 1e3))
    struct.pack_into(">HHHI", frame, 0, spec.model_id, raw_v, raw_i, power_mw)
    struct.pack_into(">HHH", frame, 10, temperature_c, int(round(temperature_c * 9 / 5 + 32)),
                     data_group)
    struct.pack_into(">HHH", frame, 96, int(round(dplus_v * 100)), int(round(dminus_v * 100)), 0)
    struct.pack_into(">I", frame, 106, int(round(record_energy_wh * 1e3)))
    struct.pack_into(">HI", frame, 110, 10, record_s)
    struct.pack_into(">HHH", frame, 118, 1, 5, 0)  # screen timeout, brightness, screen...
    struct.pack_into(">I", frame, 122, int(round(voltage_v / current_a * 10)) if raw_i else 99999)
    if spec.checksum == "xor":
        frame[129] = um34c_checksum(frame)
    else:
        struct.pack_into(">H", frame, 128, END_MARKER)
    return bytes(frame)


class UmFramer:
    """Cut frames out of a byte stream, resynchronising like libsigrok.

    While the first two buffered bytes are not the expected model id, drop one byte.
    Frames with a bad end marker/checksum are counted in ``bad_frames`` and dropped.
    """

    def __init__(self, model: str) -> None:
        self.model = MODELS[model.lower()]
        self._buf = bytearray()
        self._id = struct.pack(">H", self.model.model_id)
        self.bad_frames = 0
        self.dropped_bytes = 0

    def feed(self, data: bytes) -> List[bytes]:
        """Add bytes; return the complete, valid frames now available (oldest first)."""
        self._buf.extend(data)
        frames = []
        while True:
            start = self._buf.find(self._id)
            if start < 0:
                keep = 1 if self._buf[-1:] == self._id[:1] else 0
                self.dropped_bytes += len(self._buf) - keep
                del self._buf[:len(self._buf) - keep]
                return frames
            if start:
                self.dropped_bytes += start
                del self._buf[:start]
            if len(self._buf) < FRAME_LEN:
                return frames
            frame = bytes(self._buf[:FRAME_LEN])
            if checksum_ok(frame, self.model):
                frames.append(frame)
                del self._buf[:FRAME_LEN]
            else:
                self.bad_frames += 1
                self.dropped_bytes += 1
                del self._buf[:1]

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget buffered bytes (after a timeout)."""
        self._buf.clear()
