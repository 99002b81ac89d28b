"""Decoding one image file into a ``uint8`` array of a fixed layout.

This module knows about pixels only: colour modes, bit depths, EXIF
orientation, resizing and decompression bombs. Opening a file safely (a
regular file only, no link where none was, bounded reads) is
:mod:`.paths`' job; each file is read once. It never imports TensorFlow.

Orientation follows Pillow's :func:`PIL.ImageOps.exif_transpose`, on every
path: the EXIF ``Orientation`` tag if the file has one (even ``1``), else a
``tiff:Orientation`` in the file's XMP packet (a PNG ``iTXt``/``tEXt``/``zTXt``
chunk named ``XML:com.adobe.xmp``, a JPEG ``APP1`` XMP segment). The OpenCV
fast path takes only files with neither, so both paths give the same pixels.

Bit depths: 16-bit images are scaled by 65535 (to 8 bits, dividing by 257).
32-bit integer images (Pillow's mode ``I``) are scaled as 8-bit images when
every value lies in 0..255 and as 16-bit images when in 0..65535; 32-bit
float images (mode ``F``) as 0..1. Any other value (negative, above 65535,
above 1.0, NaN) has no range the file declares, and is refused naming the
file: never a silently saturated image.

Progressive JPEGs: every scan is a pass over the whole image, so the scans
are counted (walking the file's marker segments, no decoding) and a file of
more than :data:`MAX_JPEG_SCANS` is refused before any pixel is decoded.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import struct

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageDecodeError
from .paths import (  # noqa: F401 - _FAST_MAX_BYTES, _read_file: re-exported (tests, callers)
    _FAST_MAX_BYTES,
    _open_stream,
    _read_file,
    _read_for_fast_path,
    _where,
)

__all__ = ["COLOR_MODES", "DEFAULT_MAX_PIXELS", "FORMATS", "ImageDecodeError", "decode_image", "probe_image"]

#: PIL mode and channel count for each ``color_mode`` of the loader.
COLOR_MODES = {"grayscale": ("L", 1), "rgb": ("RGB", 3), "rgba": ("RGBA", 4)}

#: Images with more pixels than this are refused before decoding.
DEFAULT_MAX_PIXELS = 64_000_000


def _to_8bit(img, path):
    """Return ``img`` as an 8-bit-per-channel PIL image (16/32-bit scaled); refuse values of no known range."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img)
        if img.mode.startswith("I;16"):
            arr = arr.astype(np.float32) / 257.0
        else:
            arr = arr.astype(np.float64) * (255.0 / _32bit_range(arr, img.mode, path))
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    return img


def _32bit_range(arr, mode, path):
    """The top of the range of a 32-bit image (mode ``I`` or ``F``): 255, 65535 or 1.0; refused otherwise."""
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if mode == "I" and lo >= 0 and hi <= 65535:
        return 255.0 if hi <= 255 else 65535.0
    if mode == "F" and lo >= 0 and hi <= 1:  # NaN fails both comparisons
        return 1.0
    kind, valid = ("32-bit integer", "0..255 or 0..65535") if mode == "I" else ("32-bit float", "0..1")
    raise ImageDecodeError(
        f"{_where(path)}: {kind} pixels from {lo:g} to {hi:g}, outside {valid}; the file does not say "
        "what range they span, so they cannot be scaled to 8 bits without guessing (convert the image "
        "to 8 or 16 bits); refused", path=str(path))


# ----------------------------------------------------------------- fast path
# For the common case of a plain 8-bit PNG that is already in the requested
# mode and size, OpenCV's decoder (libpng in C, releasing the GIL) gives the
# very same pixels as Pillow at a fraction of the per-file overhead. It is
# used only where that equivalence is certain; everything else -- other bit
# depths, palettes, transparency chunks, colour conversions, resizing, EXIF,
# broken files -- goes through Pillow, which also raises the errors.
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
#: PNG colour type that needs no conversion for each colour mode.
_PNG_COLOR_TYPE = {"grayscale": 0, "rgb": 2, "rgba": 6}
#: Ancillary chunks before the pixel data that change no pixel value.
_PNG_HARMLESS = frozenset({b"tEXt", b"zTXt", b"iTXt", b"pHYs", b"tIME"})
#: Chunk types and text keywords that may carry an orientation Pillow applies: EXIF
#: (eXIf, ImageMagick's raw profile) and XMP (``XML:com.adobe.xmp``, whatever the chunk).
_PNG_ORIENTATION_KEYS = (b"eXIf", b"Raw profile type", b"XML:com.adobe.xmp")
_cv2 = None
_CV2_FLAGS = {}
#: Whether OpenCV decodes colour as BGR, to be swapped to RGB (before 4.11 it had no IMREAD_COLOR_RGB).
_CV2_BGR = False


def _opencv():
    """Import OpenCV on first use (``import skimgclf`` stays light); False if absent."""
    global _cv2, _CV2_BGR
    if _cv2 is None:
        try:
            import cv2
        except ImportError:  # pragma: no cover - opencv is a dependency
            cv2 = False
        else:
            _CV2_BGR = not hasattr(cv2, "IMREAD_COLOR_RGB")
            rgb = cv2.IMREAD_COLOR if _CV2_BGR else cv2.IMREAD_COLOR_RGB
            _CV2_FLAGS.update(grayscale=cv2.IMREAD_GRAYSCALE, rgb=rgb, rgba=cv2.IMREAD_UNCHANGED)
            # EXIF rotation is Pillow's job (files that have one never get here).
            keep = cv2.IMREAD_IGNORE_ORIENTATION
            for scale, gray in ((1, cv2.IMREAD_GRAYSCALE), (2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
                                (4, cv2.IMREAD_REDUCED_GRAYSCALE_4), (8, cv2.IMREAD_REDUCED_GRAYSCALE_8)):
                _CV2_REDUCED["grayscale", scale] = gray | keep
                _CV2_REDUCED["rgb", scale] = gray | rgb | keep
        _cv2 = cv2
    return _cv2


def _png_fast_flag(data, color_mode, target_size, max_pixels):
    """OpenCV imread flag if ``data`` is a PNG that OpenCV decodes exactly as Pillow, else None."""
    if len(data) < 57 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    w, h, depth, ctype, _, _, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    if depth != 8 or ctype != _PNG_COLOR_TYPE[color_mode] or interlace != 0 or w == 0 or h == 0:
        return None
    if _too_many_pixels(w * h, max_pixels):
        return None  # Pillow refuses it with the usual message
    if target_size is not None and (h, w) != tuple(target_size):
        return None
    if not data.endswith(_PNG_IEND) or any(key in data for key in _PNG_ORIENTATION_KEYS):
        return None  # truncated, or may carry an orientation (EXIF or XMP): Pillow's job
    pos = 33  # first chunk after IHDR
    while True:
        if pos + 8 > len(data):
            return None
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IDAT":
            break
        if kind not in _PNG_HARMLESS:
            return None  # tRNS, PLTE, gAMA, iCCP, acTL, ...: not provably equal
        pos += 12 + length
    cv2 = _cv2 if _cv2 is not None else _opencv()
    if not cv2:
        return None
    return _CV2_FLAGS[color_mode]


# JPEG: Pillow's ``draft`` asks libjpeg to decode at 1/2, 1/4 or 1/8 scale
# when that is still at least the target size, then resizes. OpenCV's
# IMREAD_REDUCED_* flags ask the same libjpeg(-turbo) for the same scale with
# the GIL released and less overhead per file, so the fast path decodes with
# OpenCV and then resizes exactly as the Pillow path does (:func:`_resize`):
# the same pixels (tests compare both paths). Only files where that holds take it:
# 8-bit baseline, extended or progressive Huffman JPEGs with 1 or 3
# components, a resize target, no EXIF/XMP rotation, no Adobe (CMYK/RGB
# transform) or multi-picture segments, and the end-of-image marker present.
_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_EOI = b"\xff\xd9"
_JPEG_SOF_OK = frozenset({0xC0, 0xC1, 0xC2})
_JPEG_SOF_OTHER = frozenset({0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_CV2_REDUCED = {}


def _exif_orientation(payload):
    """The orientation tag of an APP1 ``Exif`` payload: 1 if absent, None if unreadable."""
    tiff = payload[6:]
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return None
    order = "<" if tiff[:2] == b"II" else ">"
    try:
        magic, ifd = struct.unpack_from(order + "HI", tiff, 2)
        if magic != 42:
            return None
        (count,) = struct.unpack_from(order + "H", tiff, ifd)
        for k in range(count):
            tag, kind, _, value = struct.unpack_from(order + "HHI4s", tiff, ifd + 2 + 12 * k)
            if tag == 0x0112:
                return struct.unpack_from(order + "H", value)[0] if kind == 3 else None
    except struct.error:
        return None
    return 1


def _jpeg_fast_scale(data, color_mode, target_size, max_pixels):
    """libjpeg's scale (1, 2, 4 or 8) for ``data`` if the fast path equals Pillow's, else None."""
    if color_mode == "rgba" or target_size is None or not data.endswith(_JPEG_EOI):
        return None
    pos, end, exif_seen, size = 2, len(data), False, None
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: the header is complete
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        body = data[pos + 4:pos + 2 + length]
        if marker in _JPEG_SOF_OK:
            if len(body) < 6:
                return None
            precision, h, w, components = struct.unpack_from(">BHHB", body)
            if precision != 8 or components not in (1, 3) or size is not None:
                return None
            size = (w, h)
        elif marker in _JPEG_SOF_OTHER or marker == 0xEE:  # lossless, arithmetic; Adobe
            return None
        elif marker == 0xE1:
            if body.startswith(b"Exif\x00\x00"):
                if not exif_seen and _exif_orientation(body) not in (1, 0):
                    return None  # rotated (or unreadable): exif_transpose's job
                exif_seen = True
            elif b"Orientation" in body:  # XMP, which Pillow also reads for rotation
                return None
        elif marker == 0xE2 and body.startswith(b"MPF\x00"):
            return None
        pos += 2 + length
    if size is None or size[0] == 0 or size[1] == 0:
        return None
    if _too_many_pixels(size[0] * size[1], max_pixels):
        return None
    # Pillow's draft(): the largest of 8, 4, 2, 1 not above either ratio.
    ratio = min(size[0] // target_size[1], size[1] // target_size[0])
    return next((a for a in (8, 4, 2) if ratio >= a), 1)


#: Most scans a JPEG may have. libjpeg's progressive mode writes 10 (6 for
#: grayscale), mozjpeg and jpegli a few more; each scan is a pass over every
#: block of the image, so a file repeating a scan thousands of times decodes
#: for minutes (docs/security.rst).
MAX_JPEG_SCANS = 256
#: A JPEG marker: 0xFF and a code that is not stuffing (00), a fill byte (FF) or a restart (D0-D7).
_JPEG_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")


class _Bytes:
    """Bytes of a file at absolute offsets: all of them in memory, or a window over an open file read in blocks."""

    def __init__(self, data=None, fh=None, block=1 << 20):
        self.buf, self.base, self.fh, self.block = (data if data is not None else b""), 0, fh, block

    def window(self, pos, n):
        """``(buf, offset of pos in buf)`` holding bytes ``pos..pos+n`` where the file has them."""
        if self.fh is not None and (pos < self.base or pos + n > self.base + len(self.buf)):
            self.fh.seek(pos)
            self.buf, self.base = self.fh.read(max(n, self.block)), pos
        return self.buf, pos - self.base

    def next_marker(self, pos):
        """Offset of the first JPEG marker at or after ``pos``, or None."""
        while True:
            buf, at = self.window(pos, 2)
            found = _JPEG_MARKER.search(buf, at)
            if found is not None:
                return self.base + found.start()
            if self.fh is None or len(buf) < self.block:
                return None
            pos = self.base + len(buf) - 1  # a marker may straddle two blocks


def _jpeg_scans(data, limit=MAX_JPEG_SCANS):
    """The scans (SOS segments) of a JPEG up to its end-of-image, counted up to ``limit + 1``.

    ``data`` is a :class:`_Bytes`. Walks the marker segments, skipping each
    by its length and searching entropy-coded data for the next marker: no
    decoding, and 0xFF 0xDA bytes inside a segment (an EXIF thumbnail, say)
    are not counted.
    """
    pos, scans = 2, 0
    while scans <= limit:
        pos = data.next_marker(pos)
        if pos is None:
            break
        buf, at = data.window(pos, 4)
        if len(buf) < at + 4 or buf[at + 1] == 0xD9:  # the end, or end of image
            break
        marker = buf[at + 1]
        if marker in (0x01, 0xD8):  # no length
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", buf, at + 2)
        scans += marker == 0xDA
        pos += 2 + max(length, 2)
    return scans


#: Start-of-frame markers of progressive JPEGs (Huffman and arithmetic coded).
_JPEG_SOF_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})


def _jpeg_progressive(data):
    """Whether the JPEG (a :class:`_Bytes`) declares a progressive frame before its first scan."""
    pos = 2
    while True:
        buf, at = data.window(pos, 4)
        if len(buf) < at + 4 or buf[at] != 0xFF:
            return False
        marker = buf[at + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_SOF_PROGRESSIVE:
            return True
        if marker in (0xDA, 0xD9):
            return False
        pos += 2 + max(struct.unpack_from(">H", buf, at + 2)[0], 2)


def _check_jpeg_scans(data, path):
    """Refuse a progressive JPEG (a :class:`_Bytes`) of more than :data:`MAX_JPEG_SCANS` scans, before decoding it.

    Only progressive files are counted: a sequential scan codes every block
    of the image in at least a bit or two, so its cost is bounded by its
    bytes, while a progressive refinement scan can skip 32767 blocks in one
    code and cost a pass over the image in a few bytes.
    """
    if not _jpeg_progressive(data):
        return
    scans = _jpeg_scans(data)
    if scans > MAX_JPEG_SCANS:
        raise ImageDecodeError(
            f"{_where(path)}: a progressive JPEG of more than {MAX_JPEG_SCANS} scans (encoders write at most "
            "a few dozen; each scan is a pass over the whole image); refused before decoding", path=str(path))


def _resize(arr, target_size):
    """``arr`` (uint8, ``(h, w)`` or ``(h, w, c)``) resized to ``target_size`` = ``(height, width)``.

    Shrinking averages the source pixels each target pixel covers (OpenCV's
    ``INTER_AREA``: no aliasing, and faster than Pillow's filters);
    enlarging interpolates bilinearly (``INTER_LINEAR``). An image already
    of the target size is returned as it is.
    """
    h, w = target_size
    if arr.shape[:2] == (h, w):
        return arr
    cv2 = _cv2 if _cv2 is not None else _opencv()
    if not cv2:  # pragma: no cover - opencv-python-headless is a dependency
        raise ImportError("resizing images needs OpenCV: pip install opencv-python-headless")
    shrink = h <= arr.shape[0] and w <= arr.shape[1]
    out = cv2.resize(arr, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out.reshape((h, w) + arr.shape[2:])


def _too_many_pixels(pixels, max_pixels):
    """Whether Pillow would refuse or warn (left to the Pillow path and its messages)."""
    limit = Image.MAX_IMAGE_PIXELS
    return (max_pixels is not None and pixels > max_pixels) or (limit is not None and pixels > limit)


def _decode_fast(path, color_mode, target_size, max_pixels, data=None):
    """Decode ``path`` with OpenCV where provably equal to Pillow; None otherwise.

    ``data`` is the file's content from :func:`_read_for_fast_path`, if the
    caller has read it already.
    """
    if data is None:
        data = _read_for_fast_path(path)
        if data is None:
            return None
    scale = None
    if data.startswith(_PNG_SIGNATURE):
        flag = _png_fast_flag(data, color_mode, target_size, max_pixels)
    elif data.startswith(_JPEG_SOI):
        scale = _jpeg_fast_scale(data, color_mode, target_size, max_pixels)
        flag = None if scale is None or not (_cv2 if _cv2 is not None else _opencv()) else \
            _CV2_REDUCED[color_mode, scale]
    else:
        return None
    if flag is None:
        return None
    cv2 = _cv2
    try:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    except cv2.error:
        return None
    channels = COLOR_MODES[color_mode][1]
    if arr is None or arr.dtype != np.uint8:
        return None
    if scale is not None:
        arr = _resize(arr, target_size)  # as the Pillow path does, for the same pixels
    if arr.ndim == 2:
        arr = arr[:, :, np.newaxis]
    if arr.shape[2] != channels:
        return None
    if channels == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    elif channels == 3 and _CV2_BGR:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    return arr


def decode_image(path, color_mode="grayscale", target_size=None, max_pixels=DEFAULT_MAX_PIXELS, data=None,
                 follow_symlinks=True):
    """Decode one image file into a ``uint8`` array ``(height, width, channels)``.

    Parameters
    ----------
    path : str or path-like
        The file to read.
    color_mode : {"grayscale", "rgb", "rgba"}, default="grayscale"
        Mode the image is converted to (1, 3 or 4 channels).
    target_size : tuple of (int, int) or None, default=None
        ``(height, width)`` to resize to, or ``None`` to keep the size.
    max_pixels : int or None, default=64_000_000
        Images whose header declares more pixels are refused before their
        pixel data is decoded (decompression bombs). ``None`` disables the check.
    data : bytes or None, default=None
        The file's content, if the caller has read it already (the file is
        then not opened again).
    follow_symlinks : bool, default=True
        Whether ``path`` may be a symbolic link. The loader passes real
        paths and ``False``, so a link put in place of a file after its id
        was resolved is refused.

    Returns
    -------
    ndarray of shape (height, width, channels), dtype uint8
        The decoded pixels.

    Raises
    ------
    ImageDecodeError
        If the file is missing, empty, not a regular file (a named pipe, a
        device), not an image of an accepted format (:data:`FORMATS`),
        truncated, or too large.

    Notes
    -----
    Plain 8-bit PNGs already in the requested mode and size, and plain JPEGs
    to be resized (no EXIF rotation, 1 or 3 channels), are decoded with
    OpenCV: the same pixels as Pillow, with less overhead per file and, for
    JPEGs, libjpeg's reduced-scale decoding. Everything else goes through
    Pillow. Resizing averages pixel areas when shrinking and interpolates
    bilinearly when enlarging.
    """
    try:
        if data is None:
            data = _read_for_fast_path(path, follow_symlinks)
    except FileNotFoundError as exc:
        raise _as_decode_error(path, exc) from exc
    if data is not None and data.startswith(_JPEG_SOI):
        _check_jpeg_scans(_Bytes(data), path)
    arr = None if data is None else _decode_fast(path, color_mode, target_size, max_pixels, data)
    if arr is not None:
        return arr
    return _decode_pil(path, color_mode, target_size, max_pixels, data, follow_symlinks)


#: The image formats (Pillow's names) the loader reads. Each declares in its
#: header the size of what is decoded, and Pillow decodes none of them while
#: opening, so ``max_pixels`` is checked before any pixel is decoded. Left out
#: on purpose: ICO/CUR (Pillow decodes the embedded image inside
#: ``Image.open``, whatever the icon header says), and the rarer containers.
#: ("JPEG" covers the multi-picture JPEGs of phone cameras, which Pillow calls MPO.)
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "DIB", "TIFF", "WEBP", "PPM", "TGA", "PCX", "SGI")

#: Leading bytes of formats that are refused, for a message that says so.
_REFUSED_MAGIC = ((b"\x00\x00\x01\x00", "an ICO icon"), (b"\x00\x00\x02\x00", "a CUR cursor"),
                  (b"icns", "an ICNS icon"), (b"%PDF", "a PDF document"))


@contextlib.contextmanager
def _open_image(path, data, follow):
    """``Image.open`` of ``data`` (the file's bytes) or else of the regular file ``path``, accepted formats only."""
    stream = io.BytesIO(data) if data is not None else _open_stream(path, follow)
    try:
        with Image.open(stream, formats=FORMATS) as img:
            yield img
    except UnidentifiedImageError:
        stream.seek(0)
        head = stream.read(8)
        what = next((name for magic, name in _REFUSED_MAGIC if head.startswith(magic)), None)
        if what is None:
            Image.init()
            named = Image.registered_extensions().get(os.path.splitext(os.fspath(path))[1].lower())
            what = f"a {named} file (by its name)" if named and named not in FORMATS else None
        if what:
            raise ImageDecodeError(
                f"{_where(path)}: {what}, not an image of an accepted format ({', '.join(FORMATS)}); refused",
                path=str(path)) from None
        raise
    finally:
        stream.close()


def _check_pixels(img, path, max_pixels):
    """Refuse an opened (not yet decoded) image of more than ``max_pixels`` pixels."""
    w, h = img.size
    if max_pixels is not None and w * h > max_pixels:
        raise ImageDecodeError(
            f"{_where(path)}: image of {w}x{h} pixels exceeds max_pixels={max_pixels} "
            "(possible decompression bomb); refused before decoding", path=str(path)
        )


def _bomb_error(path, exc):
    """The error for an image past Pillow's own limit (raised by Image.open, whatever max_pixels is)."""
    return ImageDecodeError(
        f"{_where(path)}: {exc} (possible decompression bomb; Pillow's limit, "
        "PIL.Image.MAX_IMAGE_PIXELS, applies whatever max_pixels is); refused before decoding",
        path=str(path),
    )


#: What opening or decoding an image may raise besides ImageDecodeError.
_FAILURES = (FileNotFoundError, Image.DecompressionBombWarning, Image.DecompressionBombError,
             UnidentifiedImageError, OSError, SyntaxError, ValueError)


def _as_decode_error(path, exc, data=None):
    """The ImageDecodeError naming ``path`` for ``exc`` (one of :data:`_FAILURES`); ``data``: the bytes read."""
    if isinstance(exc, FileNotFoundError):
        return ImageDecodeError(f"{_where(path)}: image file not found", path=str(path))
    if isinstance(exc, (Image.DecompressionBombWarning, Image.DecompressionBombError)):
        return _bomb_error(path, exc)
    if isinstance(exc, UnidentifiedImageError):
        try:
            empty = (len(data) if data is not None else os.path.getsize(path)) == 0
        except OSError:
            empty = False
        what = "empty file (0 bytes), not an image" if empty else "not a readable image file"
        return ImageDecodeError(f"{_where(path)}: {what}", path=str(path))
    return ImageDecodeError(f"{_where(path)}: cannot decode image ({exc})", path=str(path))


def _decode_pil(path, color_mode, target_size, max_pixels, data=None, follow=True):
    """The Pillow path of :func:`decode_image`: every accepted format and mode, and the errors.

    ``data`` (the whole file, if read already) is decoded from memory; else
    the file is opened as a regular file (:func:`_open_stream`) and Pillow
    reads it lazily.
    """
    mode, channels = COLOR_MODES[color_mode]
    try:
        # max_pixels (checked below, before decoding) governs. Pillow may also
        # warn (DecompressionBombWarning) past Image.MAX_IMAGE_PIXELS, and its
        # hard limit still refuses larger images in Image.open. No
        # warnings.catch_warnings() here: it is not thread-safe, and the
        # loader decodes in threads.
        with _open_image(path, data, follow) as img:
            _check_pixels(img, path, max_pixels)
            if data is None and img.format in ("JPEG", "MPO"):
                _check_jpeg_scans_of_stream(img.fp, path)  # a large file, not read yet (else checked already)
            if target_size is not None and img.format in ("JPEG", "MPO"):
                # Let libjpeg decode at a reduced scale when that is still
                # at least as large as the target: much faster for photos.
                img.draft(mode if mode != "RGBA" else "RGB", (target_size[1], target_size[0]))
            img = ImageOps.exif_transpose(img)
            img = _to_8bit(img, path)
            if img.mode != mode:
                img = img.convert(mode)
            arr = np.asarray(img, dtype=np.uint8)
    except ImageDecodeError:
        raise
    except _FAILURES as exc:
        raise _as_decode_error(path, exc, data) from exc
    if target_size is not None:
        arr = _resize(arr, target_size)
    if arr.ndim == 2:
        arr = arr[:, :, np.newaxis]
    if arr.shape[2] != channels:  # pragma: no cover - PIL guarantees the mode
        raise ImageDecodeError(f"{_where(path)}: decoded {arr.shape[2]} channels, expected {channels}", path=str(path))
    return arr


def _check_jpeg_scans_of_stream(fh, path):
    """:func:`_check_jpeg_scans` of an open file, read in blocks; its position is put back."""
    here = fh.tell()
    try:
        _check_jpeg_scans(_Bytes(fh=fh), path)
    finally:
        fh.seek(here)


#: Pillow's own pattern for an orientation in XMP (``Image.getexif``).
_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(="|>)([0-9])')


def _header_orientation(img):
    """The orientation ``exif_transpose`` would apply to the opened ``img``, from its header (None: unknown).

    EXIF is read only where the header holds it (Pillow's PNG ``getexif()``
    decodes the whole image to look for a late eXIf chunk); otherwise the
    XMP packet, as ``getexif()`` reads it.
    """
    if "exif" in img.info or img.format == "TIFF":
        try:
            return img.getexif().get(0x0112)  # falls back to XMP by itself
        except Exception:  # noqa: BLE001 - unreadable EXIF: the decoder decides later
            return None
    xmp = img.info.get("XML:com.adobe.xmp") or img.info.get("xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8", "replace")
    found = _XMP_ORIENTATION.search(xmp) if xmp else None
    return int(found[2]) if found else None


def probe_image(path, max_pixels=DEFAULT_MAX_PIXELS, follow_symlinks=True):
    """The Pillow mode and ``(height, width)`` of an image file, from its header only.

    Parameters
    ----------
    path : str or path-like
        The file.
    max_pixels : int or None, default=DEFAULT_MAX_PIXELS
        Larger images are refused, as :func:`decode_image` refuses them.
    follow_symlinks : bool, default=True
        Whether ``path`` may be a symbolic link (as for :func:`decode_image`).

    Returns
    -------
    mode : str
        The Pillow mode (``"L"``, ``"RGB"``, ``"P"``, ...).
    size : tuple of (int, int)
        ``(height, width)``, after EXIF rotation.

    Raises
    ------
    ImageDecodeError
        If the file is missing, empty, not a regular file, not an image of
        an accepted format, or has too many pixels.
    """
    try:
        with _open_image(path, None, follow_symlinks) as img:
            _check_pixels(img, path, max_pixels)
            h, w = img.height, img.width
            if _header_orientation(img) in (5, 6, 7, 8):  # rotated by a quarter turn
                h, w = w, h
            return img.mode, (int(h), int(w))
    except ImageDecodeError:
        raise
    except _FAILURES as exc:
        raise _as_decode_error(path, exc) from exc
