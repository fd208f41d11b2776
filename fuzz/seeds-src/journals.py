#!/usr/bin/env python3
"""Crash journal files (`local/crash.journal`) for the crash_wire seeds, written to
the directory given (default ../seeds/crash_wire), laid out as
crashmonitor/src/record.rs documents it (x86_64: native endian is little endian):
valid sealed slots of every kind, torn slots (writing, half filled), bad CRCs, lying
shapes and text, and applying slots with their apply area (crashmonitor/src/journal.rs).
"""
import struct
import sys
import zlib
from pathlib import Path

SLOTS, SLOT_WORDS, STATE_BASE = 16, 128, 8
HEADER_WORDS = STATE_BASE + SLOTS
APPLY_OFFSET = (HEADER_WORDS + SLOTS * SLOT_WORDS) * 8
JOURNAL_LEN = APPLY_OFFSET + 8192
MAGIC = b"rtcrash1"
LAYOUT = SLOTS | SLOT_WORDS << 16 | 2 << 32
FREE, WRITING, SEALED, APPLYING = 0, 1, 2, 3
W_CHECK, W_SHAPE, W_SENTINEL, W_BUILD_ID, W_IDENTITY, W_FRAMES, W_END = 1, 2, 3, 4, 14, 54, 118
PANIC, ABORT, SEGV, BUS, ILL, FPE = 1, 2, 3, 4, 5, 6


def text_words(data, count):
    data = data.ljust(count * 8, b"\0")
    return list(struct.unpack(f"<{count}Q", data))


def slot(kind, frames, build_id=b"", identity=b"tool\n1.2.3\n1.95.0", sentinel=0x1234,
         crc_fix=0, shape_extra=0, cut=None):
    """A slot's 128 words; `frames` are (tag, addr) pairs; `crc_fix` is xored into the
    CRC (non-zero: a bad CRC); `cut` zeroes the words from there on (a torn write)."""
    w = [0] * SLOT_WORDS
    w[W_SHAPE] = kind | len(frames) << 8 | len(build_id) << 16 | len(identity) << 24 | shape_extra
    w[W_SENTINEL] = sentinel
    w[W_BUILD_ID:W_IDENTITY] = text_words(build_id, W_IDENTITY - W_BUILD_ID)
    w[W_IDENTITY:W_FRAMES] = text_words(identity, W_FRAMES - W_IDENTITY)
    for i, (tag, addr) in enumerate(frames):
        w[W_FRAMES + 2 * i] = tag
        w[W_FRAMES + 2 * i + 1] = addr
    crc = zlib.crc32(struct.pack(f"<{W_END - W_SHAPE}Q", *w[W_SHAPE:W_END]))
    w[W_CHECK] = crc ^ crc_fix
    if cut is not None:
        w[cut:] = [0] * (SLOT_WORDS - cut)
    return w


def apply_area(slot_index, before, text):
    head = struct.pack("<QQI", slot_index + 1, before, len(text))
    crc = zlib.crc32(head + text)
    return head + struct.pack("<I", crc) + text


def journal(slots=(), apply=b"", magic=MAGIC, layout=LAYOUT):
    """`slots`: (index, state, pid, words or None)."""
    words = [0] * (HEADER_WORDS + SLOTS * SLOT_WORDS)
    words[0] = struct.unpack("<Q", magic)[0]
    words[1] = layout
    for index, state, pid, record in slots:
        words[STATE_BASE + index] = state | pid << 32
        if record is not None:
            start = HEADER_WORDS + index * SLOT_WORDS
            words[start:start + SLOT_WORDS] = record
    data = struct.pack(f"<{len(words)}Q", *words) + apply.ljust(8192, b"\0")
    assert len(data) == JOURNAL_LEN
    return data


BUILD_ID = b"4f3c2a1b0e9d8c7b6a5f4e3d2c1b0a9988776655"
PANIC_FRAMES = [(2, 0x4a120), (2, 0x4b3f8), (2, 0x10234), (0, 0), (2, 0x9c1)]
SIGNAL_FRAMES = [(1, 0x4a120), (2, 0x4b3f8), (2, 0x10234)]
FULL_FRAMES = [(2, 0x1000 + 0x10 * i) for i in range(32)]


def seeds():
    ok = slot(PANIC, PANIC_FRAMES, BUILD_ID)
    yield "empty", journal()
    yield "sealed-panic", journal([(0, SEALED, 4242, ok)])
    yield "sealed-every-kind", journal(
        [(i, SEALED, 100 + i, slot(kind, SIGNAL_FRAMES if kind > ABORT else PANIC_FRAMES,
                                   BUILD_ID if i % 2 else b""))
         for i, kind in enumerate([PANIC, ABORT, SEGV, BUS, ILL, FPE])])
    yield "sealed-no-build-id", journal([(3, SEALED, 7, slot(SEGV, SIGNAL_FRAMES))])
    yield "sealed-32-frames", journal([(15, SEALED, 9, slot(ABORT, FULL_FRAMES, BUILD_ID))])
    yield "sealed-no-frames", journal([(1, SEALED, 9, slot(PANIC, [], BUILD_ID))])
    yield "all-slots-sealed", journal([(i, SEALED, i + 1, slot(PANIC, PANIC_FRAMES[: i % 6]))
                                       for i in range(SLOTS)])
    yield "torn-writing", journal([(0, WRITING, 31337, slot(SEGV, SIGNAL_FRAMES, BUILD_ID, cut=40))])
    yield "torn-sealed", journal([(2, SEALED, 5, slot(PANIC, PANIC_FRAMES, BUILD_ID, cut=30))])
    yield "writing-empty", journal([(4, WRITING, 77, None)])
    yield "bad-crc", journal([(0, SEALED, 12, slot(PANIC, PANIC_FRAMES, BUILD_ID, crc_fix=1))])
    yield "bad-shape", journal([(0, SEALED, 12, slot(PANIC, PANIC_FRAMES, shape_extra=1 << 40))])
    yield "bad-kind", journal([(0, SEALED, 12, slot(9, PANIC_FRAMES))])
    yield "bad-frame-tag", journal([(0, SEALED, 12, slot(PANIC, [(3, 0x10)]))])
    yield "bad-build-id", journal([(0, SEALED, 12, slot(PANIC, PANIC_FRAMES, b"XYZ"))])
    yield "bad-identity", journal([(0, SEALED, 12, slot(PANIC, PANIC_FRAMES, identity=b"tool\n1.0"))])
    yield "bad-program", journal([(0, SEALED, 12, slot(PANIC, PANIC_FRAMES, identity=b".t/x\n1\n1.95.0"))])
    text = b"tool\n1.2.3\n2026-12-06\ntool@1.2.3-1.95.0-linux-amd64-2026-12-06.v1.count\ncrash/panic\n?+0x0"
    yield "applying", journal([(0, APPLYING, 4242, ok), (1, SEALED, 4243, ok)], apply_area(0, 3, text))
    yield "applying-malformed", journal([(5, APPLYING, 1, slot(PANIC, PANIC_FRAMES, crc_fix=7))],
                                        apply_area(5, 0, text.replace(b"crash/panic\n?+0x0", b"crash/malformed")))
    yield "applying-bad-area-crc", journal([(0, APPLYING, 4242, ok)],
                                           apply_area(0, 3, text)[:20] + b"\0\0\0\0" + text)
    yield "applying-no-area", journal([(0, APPLYING, 4242, ok)])
    yield "foreign-magic", journal([(0, SEALED, 1, ok)], magic=b"rtcrash0")
    yield "foreign-layout", journal([(0, SEALED, 1, ok)], layout=LAYOUT + 1)
    yield "cut", journal([(0, SEALED, 1, ok)])[:APPLY_OFFSET - 100]


out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "../seeds/crash_wire")
out.mkdir(parents=True, exist_ok=True)
for name, data in seeds():
    (out / f"journal-{name}").write_bytes(data)
