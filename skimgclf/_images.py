"""Decoding one image file into a ``uint8`` array of a fixed layout.

This module knows about pixels only: colour modes, bit depths, EXIF
orientation, resizing and decompression bombs. It never imports TensorFlow.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: PIL mode and channel count for each ``color_mode`` of the loader.
COLOR_MODES = {"grayscale": ("L", 1), "rgb": ("RGB", 3), "rgba": ("RGBA", 4)}

#: Images with more pixels than this are refused before decoding.
DEFAULT_MAX_PIXELS = 64_000_000


class ImageDecodeError(ValueError):
    """An image file could not be read or decoded.

    Subclasses :class:`ValueError`, so code that catches bad-input errors of
    scikit-learn also catches it. The message names the file.
    """


def _to_8bit(img):
    """Return ``img`` as an 8-bit-per-channel PIL image (16/32-bit scaled)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img)
        if img.mode.startswith("I;16"):
            arr = arr.astype(np.float32) / 257.0
        else:
            # 32-bit int or float: map the type's own range to 8 bits.
            lo, hi = (0.0, 65535.0) if img.mode == "I" else (0.0, 1.0)
            if img.mode == "I" and arr.max(initial=0) <= 255:
                hi = 255.0
            arr = (arr.astype(np.float32) - lo) * (255.0 / (hi - lo))
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    return img


def decode_image(path, color_mode="grayscale", target_size=None, max_pixels=DEFAULT_MAX_PIXELS):
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

    Returns
    -------
    ndarray of shape (height, width, channels), dtype uint8
        The decoded pixels.

    Raises
    ------
    ImageDecodeError
        If the file is missing, empty, not an image, truncated, or too large.
    """
    mode, channels = COLOR_MODES[color_mode]
    try:
        with warnings.catch_warnings():
            # max_pixels (checked below, before decoding) governs, not
            # Pillow's warning; Pillow's hard limit (2 * Image.MAX_IMAGE_PIXELS)
            # still refuses larger images in Image.open.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if max_pixels is not None and w * h > max_pixels:
                    raise ImageDecodeError(
                        f"{path}: image of {w}x{h} pixels exceeds max_pixels={max_pixels} "
                        "(possible decompression bomb); refused before decoding"
                    )
                if target_size is not None and img.format == "JPEG":
                    # Let libjpeg decode at a reduced scale when that is still
                    # at least as large as the target: much faster for photos.
                    img.draft(mode if mode != "RGBA" else "RGB", (target_size[1], target_size[0]))
                img = ImageOps.exif_transpose(img)
                img = _to_8bit(img)
                if img.mode != mode:
                    img = img.convert(mode)
                if target_size is not None and img.size != (target_size[1], target_size[0]):
                    img = img.resize((target_size[1], target_size[0]), Image.Resampling.BILINEAR)
                arr = np.asarray(img, dtype=np.uint8)
    except ImageDecodeError:
        raise
    except FileNotFoundError as exc:
        raise ImageDecodeError(f"{path}: image file not found") from exc
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(
            f"{path}: {exc} (possible decompression bomb; Pillow's limit, "
            "PIL.Image.MAX_IMAGE_PIXELS, applies whatever max_pixels is); refused before decoding"
        ) from exc
    except UnidentifiedImageError as exc:
        try:
            empty = os.path.getsize(path) == 0
        except OSError:
            empty = False
        if empty:
            raise ImageDecodeError(f"{path}: empty file (0 bytes), not an image") from exc
        raise ImageDecodeError(f"{path}: not a readable image file") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"{path}: cannot decode image ({exc})") from exc
    if arr.ndim == 2:
        arr = arr[:, :, np.newaxis]
    if arr.shape[2] != channels:  # pragma: no cover - PIL guarantees the mode
        raise ImageDecodeError(f"{path}: decoded {arr.shape[2]} channels, expected {channels}")
    return arr
