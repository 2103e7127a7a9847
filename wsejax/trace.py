"""The record format of `<debug>` traces: what a PE writes into a trace buffer and how the host
reads it back (`cerebras.sdk.debug.debug_util.read_trace`).

A trace buffer is an array of 16-bit words. Each record is a tag word followed by its payload:
one word for a 16-bit or smaller value (bool, u8, i8, u16, i16, f16), two for a 32-bit value
(low word first), three for a timestamp (the 48-bit counter of `<time>`, low word first), and
for a string its length in bytes then its bytes, two to a word (low byte first). A record that
no longer fits in the buffer is dropped whole, and so is every later one.
"""

from __future__ import annotations

import numpy as np

from wsejax.errors import WsejaxError
from wsejax.types import DType

# tag -> (name, payload words, numpy type of the value); a string's payload is variable
TAGS: dict[int, tuple[str, int, type | None]] = {
    1: ("bool", 1, np.bool_), 2: ("u8", 1, np.uint8), 3: ("i8", 1, np.int8),
    4: ("u16", 1, np.uint16), 5: ("i16", 1, np.int16), 6: ("f16", 1, np.float16),
    7: ("u32", 2, np.uint32), 8: ("i32", 2, np.int32), 9: ("f32", 2, np.float32),
    10: ("timestamp", 3, None), 11: ("string", 0, None),
}
TAG_OF = {name: tag for tag, (name, _, _) in TAGS.items()}

# the runtime types `trace(x)` takes, by the name of their trace function
TRACED_TYPES = {"bool": DType.bool_, "u8": DType.u8, "i8": DType.i8, "u16": DType.u16,
                "i16": DType.i16, "f16": DType.f16, "u32": DType.u32, "i32": DType.i32,
                "f32": DType.f32}


def string_words(data: bytes) -> list[int]:
    """A string record's payload: its length in bytes, then its bytes two to a word."""
    padded = data + b"\0" * (len(data) % 2)
    return [len(data)] + [padded[k] | padded[k + 1] << 8 for k in range(0, len(padded), 2)]


def decode(words, count: int) -> list:
    """The records of the first `count` words of a trace buffer: Python numbers (bool, int,
    float) for values and timestamps, str for strings."""
    words = [int(w) for w in np.asarray(words, np.uint16)[:count]]
    out, k = [], 0
    while k < len(words):
        tag = words[k]
        if tag not in TAGS:
            raise WsejaxError(f"trace buffer: word {k} is not a record tag ({tag})")
        name, n, nptype = TAGS[tag]
        if name == "string":
            nbytes = words[k + 1]
            n = 1 + (nbytes + 1) // 2
            raw = b"".join(w.to_bytes(2, "little") for w in words[k + 2:k + 1 + n])
            out.append(raw[:nbytes].decode("utf-8", "replace"))
        elif name == "timestamp":
            out.append(sum(w << (16 * j) for j, w in enumerate(words[k + 1:k + 1 + n])))
        else:
            bits = sum(w << (16 * j) for j, w in enumerate(words[k + 1:k + 1 + n]))
            raw = np.array([bits], np.uint32 if n == 2 else np.uint16)
            item = np.dtype(nptype).itemsize
            out.append(raw.view(np.uint8)[:item].view(nptype)[0].item()
                       if nptype is not np.bool_ else bits != 0)
        k += 1 + n
    return out
