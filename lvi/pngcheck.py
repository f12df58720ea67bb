"""Is a PNG whole? A structural check without decoding pixels.

PIL reads only the header, so a PNG cut in half with an ``IEND`` chunk appended looks fine
until something decodes it (every later edit then fails). :func:`png_problem` walks the
chunks (each length within the file, each CRC right, ``IEND`` last) and inflates the IDAT
stream to its end marker, discarding the output in bounded pieces: a cut file fails one of
these without the memory or time of a full decode (see docs/RELIABILITY.md for the cost).
"""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PIECE = 1 << 20  # inflate at most this much at a time (bounded memory)


def png_problem(data: bytes) -> str | None:
    """``None`` when ``data`` is a complete PNG, else what is wrong with it (one line)."""
    if not data.startswith(PNG_SIGNATURE):
        return "no PNG signature"
    pos, end = len(PNG_SIGNATURE), len(data)
    inflater = zlib.decompressobj()
    seen_idat = False
    view = memoryview(data)
    while True:
        if pos + 12 > end:
            return "the file ends inside a chunk header (no IEND)"
        length, ctype = struct.unpack(">I4s", view[pos : pos + 8])
        body_end = pos + 8 + length
        if body_end + 4 > end:
            return f"chunk {ctype!r} runs past the end of the file"
        crc = struct.unpack(">I", view[body_end : body_end + 4])[0]
        if zlib.crc32(view[pos + 4 : body_end]) != crc:
            return f"chunk {ctype!r} has a wrong CRC"
        if ctype == b"IDAT":
            seen_idat = True
            try:
                chunk: bytes | memoryview = view[pos + 8 : body_end]
                while chunk and not inflater.eof:
                    inflater.decompress(chunk, _PIECE)
                    chunk = inflater.unconsumed_tail
            except zlib.error:
                return "the image stream is corrupt"
        elif ctype == b"IEND":
            if not seen_idat:
                return "no image data"
            try:  # output zlib still holds back (max_length) before its end marker
                while not inflater.eof and inflater.decompress(b"", _PIECE):
                    pass
            except zlib.error:
                return "the image stream is corrupt"
            if not inflater.eof:
                return "the image stream is cut short"
            return None
        pos = body_end + 4


__all__ = ["PNG_SIGNATURE", "png_problem"]
