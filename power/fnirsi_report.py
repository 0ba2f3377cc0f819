"""FNIRSI FNB48 / C1 / FNB48S / FNB58 USB-meter HID reports, parsed and built (no I/O).

Every report is 64 bytes (baryluk/fnirsi-usb-power-data-logger ``fnirsi_logger.py``;
docs/references.md §3.5)::

    [0]      0xAA
    [1]      type: 0x04 = data (others, e.g. the first packet after 0x81, are ignored)
    [2+15k]  sample k = 0..3, 15 bytes, little-endian:
               +0 u32 voltage /1e5 V   +4 u32 current /1e5 A
               +8 u16 D+ /1000 V       +10 u16 D- /1000 V   +12 u8 (constant 1)
               +13 u16 temperature /10 degC
    [62]     unknown
    [63]     CRC-8 over bytes 1..62 (poly 0x39, init 0x42, not reflected, xorout 0)

Commands to the meter are 0xAA, a command byte, 61 zero bytes and the same CRC:
0x81 (hello), 0x82 (start streaming), 0x83 (keep-alive). The meter sends 100 samples/s,
4 per report, and no power or energy figures: P = V x I, integrated on the host.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Sequence, Tuple

from power.errors import FrameError

REPORT_LEN = 64
DATA_TYPE = 0x04
CMD_HELLO, CMD_START, CMD_KEEPALIVE = 0x81, 0x82, 0x83
SAMPLES_PER_REPORT = 4
SAMPLE_PERIOD_S = 0.01  # 100 samples/s

#: USB ids -> model name (``HID_ID`` in sysfs uevent is ``0003:0000VVVV:0000PPPP``).
USB_IDS = {
    (0x0483, 0x003A): "fnb48",
    (0x0483, 0x003B): "c1",
    (0x2E3C, 0x5558): "fnb58",
    (0x2E3C, 0x0049): "fnb48s",
}


def crc8(data: bytes, poly: int = 0x39, init: int = 0x42) -> int:
    """CRC-8 used by FNIRSI meters (width 8, poly 0x39, init 0x42, no reflection)."""
    crc = init
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def command(code: int) -> bytes:
    """The 64-byte command report for ``code`` (0x81, 0x82 or 0x83)."""
    body = bytearray(REPORT_LEN)
    body[0], body[1] = 0xAA, code
    body[63] = crc8(bytes(body[1:63]))
    return bytes(body)


@dataclass(frozen=True)
class FnirsiSample:
    """One of the four samples in a data report, in SI units."""

    voltage_v: float
    current_a: float
    dplus_v: float
    dminus_v: float
    temperature_c: float

    @property
    def power_w(self) -> float:
        """V x I in watts."""
        return self.voltage_v * self.current_a


def parse_report(report: bytes, check_crc: bool = True) -> Tuple[FnirsiSample, ...]:
    """The samples of a data report; ``()`` for other report types.

    Raises ``FrameError`` for a wrong length, a missing 0xAA, or (when ``check_crc``)
    a CRC mismatch.
    """
    if len(report) != REPORT_LEN:
        raise FrameError(f"FNIRSI report must be {REPORT_LEN} bytes, got {len(report)}")
    if report[0] != 0xAA:
        raise FrameError(f"FNIRSI report starts with 0x{report[0]:02X}, not 0xAA")
    if report[1] != DATA_TYPE:
        return ()
    if check_crc:
        expected = crc8(report[1:63])
        if report[63] != expected:
            raise FrameError(f"FNIRSI report CRC 0x{report[63]:02X} != computed 0x{expected:02X}")
    samples = []
    for k in range(SAMPLES_PER_REPORT):
        v, i, dp, dm, _one, t = struct.unpack_from("<IIHHBH", report, 2 + 15 * k)
        samples.append(FnirsiSample(v / 1e5, i / 1e5, dp / 1e3, dm / 1e3, t / 10))
    return tuple(samples)


def build_report(samples: Sequence[Tuple[float, float]], temperature_c: float = 25.0) -> bytes:
    """A data report holding four ``(voltage_v, current_a)`` samples (for simulators)."""
    if len(samples) != SAMPLES_PER_REPORT:
        raise FrameError(f"a report holds {SAMPLES_PER_REPORT} samples, got {len(samples)}")
    body = bytearray(REPORT_LEN)
    body[0], body[1] = 0xAA, DATA_TYPE
    for k, (voltage_v, current_a) in enumerate(samples):
        struct.pack_into("<IIHHBH", body, 2 + 15 * k, int(round(voltage_v * 1e5)),
                         int(round(current_a * 1e5)), 0, 0, 1, int(round(temperature_c * 10)))
    body[63] = crc8(bytes(body[1:63]))
    return bytes(body)
