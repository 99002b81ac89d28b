"""Decoding one image file (``skimgclf.io.decode``): one file, one picture, at a bounded cost.

- Orientation: the OpenCV fast path and the Pillow path give the same pixels
  for every file, whatever orientation its EXIF or XMP (PNG ``iTXt``/``tEXt``
  chunk, JPEG ``APP1`` packet) declares: both follow Pillow's
  ``ImageOps.exif_transpose`` (hypothesis over sizes, modes, formats and
  tags). Before, a PNG with XMP ``tiff:Orientation="3"`` loaded unrotated
  through the fast path and rotated through Pillow.
- 32-bit images: integers in 0..255 or 0..65535 and floats in 0..1 are
  scaled; anything else is refused, e.g. ``.../deep.tif: 32-bit integer
  pixels from 0 to 6.3e+06, outside 0..255 or 0..65535; ...; refused``
  (before: an all-white image).
- Progressive JPEGs of more than ``MAX_JPEG_SCANS`` scans are refused before
  decoding: ``.../scans.jpg: a progressive JPEG of more than 256 scans
  (...); refused before decoding`` (before: 15.7 s for one 8000x8000 file
  of 2,000 scans, 131 s for 20,000).
- The OpenCV fast path gives Pillow's pixels (PNG, and JPEG at a reduced
  scale); what Pillow must handle (rotation, CMYK, palettes, 16-bit,
  transparency, truncation) falls back to it.
- Damaged files, files named like images that are not (an icon, a named
  pipe), and decompression bombs are refused naming the file, before
  decoding where the header tells.
"""

import io
import os
import re
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
from conftest import RNG, gray_loader, noise, write_images
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageFile, ImageOps, PngImagePlugin

from skimgclf import ImageFolderLoader
from skimgclf.errors import ImageDecodeError
from skimgclf.io import decode
from skimgclf.io import decode as _images
from skimgclf.io.decode import MAX_JPEG_SCANS, decode_image


def _xmp(orientation, element=False):
    value = (f"<tiff:Orientation>{orientation}</tiff:Orientation>" if element
             else f'tiff:Orientation="{orientation}"')
    return ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" {"" if element else value}>'
            f'{value if element else ""}</rdf:Description></rdf:RDF></x:xmpmeta>')


def _pillow(path, color_mode, target):
    """The Pillow path alone."""
    return decode._decode_pil(path, color_mode, target, None)


# ------------------------------------------------------------- orientation
_FILES = st.fixed_dictionaries({
    "format": st.sampled_from(["PNG", "JPEG"]),
    "mode": st.sampled_from(["L", "RGB", "RGBA", "P"]),
    "height": st.integers(2, 24),
    "width": st.integers(2, 24),
    "exif": st.none() | st.integers(0, 9),
    "xmp": st.none() | st.integers(0, 9),
    "xmp_as": st.sampled_from(["itxt", "itxt-zip", "text", "element"]),
    "seed": st.integers(0, 2**16),
})


def _write(path, spec):
    """Write the file ``spec`` describes: noise pixels (no orientation leaves them unchanged), the tags asked for."""
    fmt, mode = spec["format"], spec["mode"]
    if fmt == "JPEG" and mode in ("RGBA", "P"):
        mode = "RGB"
    rng = np.random.default_rng(spec["seed"])
    shape = (spec["height"], spec["width"]) + {"L": (), "P": (), "RGB": (3,), "RGBA": (4,)}[mode]
    img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), "L" if mode == "P" else mode)
    if mode == "P":
        img = img.convert("P")
    kwargs = {}
    if spec["exif"] is not None:
        exif = Image.Exif()
        exif[0x0112] = spec["exif"]
        kwargs["exif"] = exif
    if spec["xmp"] is not None:
        packet = _xmp(spec["xmp"], element=spec["xmp_as"] == "element")
        if fmt == "JPEG":
            kwargs["xmp"] = packet.encode()
        else:
            info = PngImagePlugin.PngInfo()
            if spec["xmp_as"] == "text":
                info.add_text("XML:com.adobe.xmp", packet)
            else:
                info.add_itxt("XML:com.adobe.xmp", packet, zip=spec["xmp_as"] == "itxt-zip")
            kwargs["pnginfo"] = info
    img.save(path, fmt, **({"quality": 90} if fmt == "JPEG" else {}), **kwargs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=_FILES)
def test_fast_path_and_pillow_give_the_same_pixels_whatever_the_orientation_tags(tmp_path, spec):
    path = tmp_path / ("f.png" if spec["format"] == "PNG" else "f.jpg")
    _write(path, spec)
    with Image.open(path) as img:
        shown_img = ImageOps.exif_transpose(img)  # what Pillow shows: EXIF first, else XMP
        shown_hw = (shown_img.height, shown_img.width)
    assert decode.probe_image(path)[1] == shown_hw  # the size fit decides from
    half = (max(1, shown_hw[0] // 2), max(1, shown_hw[1] // 2))
    for color_mode in ("grayscale", "rgb", "rgba"):  # every mode and target: the fast path where it applies
        for target in (None, shown_hw, half, (7, 5)):
            fast = decode_image(path, color_mode, target)
            np.testing.assert_array_equal(fast, _pillow(path, color_mode, target), err_msg=f"{color_mode} {target}")
            assert fast.shape[:2] == (target or shown_hw)
        if spec["format"] == "PNG":  # lossless: exactly Pillow's exif_transpose
            expected = np.asarray(shown_img.convert({"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}[color_mode]))
            np.testing.assert_array_equal(decode_image(path, color_mode).reshape(expected.shape), expected)


def test_a_png_with_xmp_orientation_is_rotated_on_every_path(tmp_path):
    """The case found: XMP ``tiff:Orientation="3"`` in an iTXt chunk, loaded as rgb at its own size."""
    arr = np.zeros((6, 10, 3), np.uint8)
    arr[0, 0] = 255  # a white corner, top left in the file
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", _xmp(3))
    path = tmp_path / "x.png"
    Image.fromarray(arr).save(path, pnginfo=info)
    for color_mode, target in (("rgb", None), ("rgb", (6, 10)), ("grayscale", None), ("rgba", None)):
        out = decode_image(path, color_mode, target)
        assert out[-1, -1, :3].min() == 255 and out[0, 0, :3].max() == 0, (color_mode, target)  # rotated 180 degrees
    loaded = ImageFolderLoader(tmp_path, color_mode="rgb", target_size=None, verbose=0).transform(["x"])
    assert loaded[0, -1, -1].min() == 1.0 and loaded[0, 0, 0].max() == 0.0


# ------------------------------------------------------------- bit depths
def _tiff(path, arr):
    Image.fromarray(arr).save(path, "TIFF")
    return path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arr=hnp.arrays(np.int32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
                      elements=st.integers(-2**31, 2**31 - 1) | st.integers(0, 300) | st.integers(0, 70000)))
def test_32bit_integer_tiffs_are_scaled_by_their_range_or_refused(tmp_path, arr):
    path = _tiff(tmp_path / "deep.tif", arr)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi > 65535:
        with pytest.raises(ImageDecodeError, match=re.escape(f"{path}: 32-bit integer pixels from {lo:g} to {hi:g}, "
                                                             "outside 0..255 or 0..65535")):
            decode_image(path, "grayscale")
        return
    top = 255 if hi <= 255 else 65535
    expected = np.rint(arr.astype(np.float64) * 255 / top).astype(np.uint8)
    np.testing.assert_array_equal(decode_image(path, "grayscale")[..., 0], expected)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arr=hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
                      elements=st.floats(-3, 3, width=32) | st.floats(0, 1, width=32)
                      | st.sampled_from([np.nan, np.inf]).map(np.float32)))
def test_float_tiffs_are_scaled_from_0_to_1_or_refused(tmp_path, arr):
    path = _tiff(tmp_path / "float.tif", arr)
    if not (np.all(arr >= 0) and np.all(arr <= 1)):
        with pytest.raises(ImageDecodeError, match=re.escape(f"{path}: 32-bit float pixels from ")) as info:
            decode_image(path, "rgb")
        assert "outside 0..1" in str(info.value) and str(info.value).endswith("refused")
        return
    expected = np.rint(arr.astype(np.float64) * 255).astype(np.uint8)
    np.testing.assert_array_equal(decode_image(path, "grayscale")[..., 0], expected)


def test_the_32bit_tiffs_found_are_refused_not_white(tmp_path):
    """The two cases found: an int32 TIFF above 65535 and a float TIFF above 1 both loaded all white."""
    ints = _tiff(tmp_path / "ints.tif", (np.arange(64, dtype=np.int32).reshape(8, 8) * 100_000))
    floats = _tiff(tmp_path / "floats.tif", np.linspace(0, 3, 64, dtype=np.float32).reshape(8, 8))
    for name, path in (("ints", ints), ("floats", floats)):
        with pytest.raises(ImageDecodeError, match=re.escape(f"row 0: id '{name}': {path}: 32-bit")):
            ImageFolderLoader(tmp_path, color_mode="grayscale", target_size=(4, 4), verbose=0).transform([name])


# ------------------------------------------------------- progressive JPEGs
def _scans(data):
    """``(start, end)`` of each scan of a JPEG (its header and its entropy-coded data)."""
    out, pos = [], 2
    while data[pos + 1] != 0xD9:
        (length,) = struct.unpack_from(">H", data, pos + 2)
        end = pos + 2 + length
        if data[pos + 1] == 0xDA:
            end = re.compile(rb"\xff[^\x00\xd0-\xd7]").search(data, end).start()
            out.append((pos, end))
        pos = end
    return out


def _progressive(side=64, mode="RGB", repeats=0, seed=0):
    """A progressive JPEG from Pillow; its last scan (an AC refinement) repeated ``repeats`` more times."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (side, side) + ((3,) if mode == "RGB" else ()), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, "JPEG", progressive=True, quality=80)
    data = buf.getvalue()
    start, end = _scans(data)[-1]
    return data[:end] + data[start:end] * repeats + data[end:]


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("side", [1, 8, 33, 200])
def test_progressive_jpegs_as_encoders_write_them_load(tmp_path, mode, side):
    path = tmp_path / "p.jpg"
    data = _progressive(side, mode)
    assert 2 <= len(_scans(data)) <= 10  # libjpeg: 10 scans for colour, 6 for grayscale
    path.write_bytes(data)
    for target in (None, (4, 4)):
        np.testing.assert_array_equal(decode_image(path, "rgb", target), _pillow(path, "rgb", target))


@pytest.mark.parametrize("extra, refused", [(MAX_JPEG_SCANS - 10 - 1, False), (MAX_JPEG_SCANS - 10, False),
                                            (MAX_JPEG_SCANS - 10 + 1, True), (2000, True)])
def test_a_jpeg_of_too_many_scans_is_refused_before_decoding(tmp_path, extra, refused):
    path = tmp_path / "scans.jpg"
    path.write_bytes(_progressive(32, "RGB", repeats=extra))
    assert len(_scans(path.read_bytes())) == 10 + extra
    if not refused:
        assert decode_image(path, "rgb", (8, 8)).shape == (8, 8, 3)
        return
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError, match=re.escape(
            f"{path}: a progressive JPEG of more than {MAX_JPEG_SCANS} scans (encoders write at most a few dozen; "
            "each scan is a pass over the whole image); refused before decoding")):
        decode_image(path, "rgb", (8, 8))
    assert time.perf_counter() - start < 1.0
    with pytest.raises(ImageDecodeError, match=re.escape(f"row 0: id 'scans': {path}: a progressive JPEG")):
        ImageFolderLoader(tmp_path, color_mode="grayscale", target_size=None, verbose=0).transform(["scans"])


def test_the_hostile_jpeg_found_is_refused_in_milliseconds(tmp_path):
    """The case found, smaller: a flat progressive JPEG whose last scan is repeated 2,000 times (a few KB each)."""
    buf = io.BytesIO()
    Image.fromarray(np.full((1024, 1024, 3), 128, np.uint8)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    start, end = _scans(data)[-1]
    path = tmp_path / "hostile.jpg"
    path.write_bytes(data[:end] + data[start:end] * 2000 + data[end:])
    assert path.stat().st_size < 1_000_000
    began = time.perf_counter()
    with pytest.raises(ImageDecodeError, match="refused before decoding"):
        decode_image(path, "rgb", (64, 64))
    assert time.perf_counter() - began < 0.5


def _with_comments(data, payload, count):
    """``data`` with ``count`` COM segments of ``payload`` after its SOI marker."""
    segment = b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + segment * count + data[2:]


def test_scan_markers_inside_segments_are_not_counted_and_large_files_are_checked_too(tmp_path):
    payload = b"\xff\xda" * 32000  # bytes that look like scan headers, inside comments
    ok = tmp_path / "ok.jpg"
    ok.write_bytes(_with_comments(_progressive(16), payload, 300))  # 19 MB: read lazily, past the fast path
    assert ok.stat().st_size > decode._FAST_MAX_BYTES
    np.testing.assert_array_equal(decode_image(ok, "rgb"), _pillow(ok, "rgb", None))
    small = tmp_path / "small.jpg"
    small.write_bytes(_with_comments(_progressive(16), payload[:400], 1))
    assert decode_image(small, "rgb").shape == (16, 16, 3)
    big = tmp_path / "big.jpg"
    big.write_bytes(_with_comments(_progressive(16, repeats=MAX_JPEG_SCANS), payload, 300))
    assert big.stat().st_size > decode._FAST_MAX_BYTES
    with pytest.raises(ImageDecodeError, match=re.escape(f"{big}: a progressive JPEG of more than")):
        decode_image(big, "rgb")


# ------------------------------------------------- what is read at all
def _special(path, kind):
    """Make ``path`` a socket, a character device or a folder; False where the system does not let us."""
    import socket
    import stat

    if kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        return sock
    if kind == "device":
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # what /dev/null is
        except (PermissionError, AttributeError):
            return False
        return True
    path.mkdir()
    return True


@pytest.mark.skipif(os.name != "posix", reason="sockets and device files named like images are POSIX")
@pytest.mark.parametrize("kind, says", [("socket", "a socket, not an image file; only regular files are read"),
                                        ("device", "a device, not an image file; only regular files are read"),
                                        ("folder", "a folder, not an image file; only regular files are read")])
def test_sockets_devices_and_folders_named_like_images_are_refused(tmp_path, kind, says):
    made = _special(tmp_path / "thing.png", kind)
    if made is False:
        pytest.skip(f"cannot make a {kind} here")
    loader = ImageFolderLoader(tmp_path, color_mode="grayscale", target_size=(4, 4), verbose=0)
    with pytest.raises(ImageDecodeError, match=re.escape(says)):
        loader.transform(["thing.png"])
    with pytest.raises(ImageDecodeError, match=re.escape(f"{tmp_path / 'thing.png'}: {says}")):
        decode_image(tmp_path / "thing.png")


@pytest.mark.parametrize("head, what", [(b"\x00\x00\x01\x00", "an ICO icon"), (b"\x00\x00\x02\x00", "a CUR cursor"),
                                        (b"icns", "an ICNS icon"), (b"%PDF-1.4", "a PDF document")])
def test_refused_formats_are_named_whatever_the_file_is_called(tmp_path, head, what):
    path = tmp_path / "x.png"
    path.write_bytes(head + bytes(64))
    with pytest.raises(ImageDecodeError, match=re.escape(f"{path}: {what}, not an image of an accepted format (PNG, "
                                                         "JPEG, GIF, BMP, DIB, TIFF, WEBP, PPM, TGA, PCX, SGI); refused")):
        decode_image(path, "grayscale")


def test_a_file_is_identified_by_its_content_not_its_name(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(arr).save(tmp_path / "really-a-png.jpg", "PNG")
    np.testing.assert_array_equal(decode_image(tmp_path / "really-a-png.jpg", "grayscale")[..., 0], arr)


def test_max_pixels_none_turns_the_check_off(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (100, 60)).save(path)
    with pytest.raises(ImageDecodeError, match=re.escape(f"{path}: image of 100x60 pixels exceeds max_pixels=5999")):
        decode_image(path, "grayscale", max_pixels=5999)
    assert decode_image(path, "grayscale", max_pixels=6000).shape == (60, 100, 1)
    assert decode_image(path, "grayscale", max_pixels=None).shape == (60, 100, 1)


def pil_only(monkeypatch, path, color_mode, target_size=None):
    """decode_image with the fast path switched off."""
    with monkeypatch.context() as m:
        m.setattr(_images, "_decode_fast", lambda *a: None)
        return decode_image(path, color_mode, target_size)


@pytest.mark.parametrize(
    "pil_mode, shape, color_mode",
    [("L", (28, 28), "grayscale"), ("RGB", (20, 30, 3), "rgb"), ("RGBA", (17, 9, 4), "rgba")],
)
def test_fast_path_equals_pillow_on_plain_pngs(tmp_path, monkeypatch, pil_mode, shape, color_mode):
    path = tmp_path / "a.png"
    Image.fromarray(noise(shape), pil_mode).save(path)
    fast = _images._decode_fast(path, color_mode, None, _images.DEFAULT_MAX_PIXELS)
    assert fast is not None, "a plain 8-bit PNG in the requested mode takes the fast path"
    slow = pil_only(monkeypatch, path, color_mode)
    assert fast.dtype == slow.dtype == np.uint8
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(decode_image(path, color_mode), slow)
    # Same size as the target: still the fast path; another size: Pillow resizes.
    assert _images._decode_fast(path, color_mode, shape[:2], None) is not None
    assert _images._decode_fast(path, color_mode, (8, 8), None) is None


def test_jpeg_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((30, 40, 3), np.uint8)
    arr[:10, :, 0] = 255  # red band on top
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "photo.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    assert _images._decode_fast(path, "rgb", None, None) is None
    out = decode_image(path, "rgb")
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert out.shape == (40, 30, 3)
    np.testing.assert_array_equal(out, expected)
    assert out[:, -5:, 0].mean() > 200 and out[:, :5, 0].mean() < 60  # the band is now on the right


def test_png_with_exif_orientation_falls_back(tmp_path):
    arr = noise((10, 20))
    exif = Image.Exif()
    exif[0x0112] = 8
    path = tmp_path / "rotated.png"
    Image.fromarray(arr, "L").save(path, exif=exif)
    assert _images._decode_fast(path, "grayscale", None, None) is None
    assert decode_image(path, "grayscale").shape == (20, 10, 1)


def test_16bit_png_falls_back_and_is_scaled(tmp_path, monkeypatch):
    arr = RNG.integers(0, 65536, size=(12, 12), dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    assert Image.open(path).mode.startswith("I")
    assert _images._decode_fast(path, "grayscale", None, None) is None
    out = decode_image(path, "grayscale")
    np.testing.assert_array_equal(out, pil_only(monkeypatch, path, "grayscale"))
    np.testing.assert_allclose(out[..., 0], arr / 257.0, atol=0.51)


@pytest.mark.parametrize("color_mode", ["grayscale", "rgb", "rgba"])
def test_palette_and_transparency_fall_back(tmp_path, monkeypatch, color_mode):
    pal = Image.fromarray(noise((16, 16, 3)), "RGB").quantize(colors=16)
    pal_path, trns_path = tmp_path / "pal.png", tmp_path / "trns.png"
    pal.save(pal_path)
    Image.fromarray(noise((16, 16)), "L").save(trns_path, transparency=7)
    for path in (pal_path, trns_path):
        assert _images._decode_fast(path, color_mode, None, None) is None
        expected = np.asarray(Image.open(path).convert({"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}[color_mode]))
        out = decode_image(path, color_mode)
        np.testing.assert_array_equal(out.reshape(expected.shape), expected)


def test_colour_conversion_falls_back(tmp_path):
    path = tmp_path / "rgb.png"
    Image.fromarray(noise((9, 9, 3)), "RGB").save(path)
    assert _images._decode_fast(path, "grayscale", None, None) is None
    expected = np.asarray(Image.open(path).convert("L"))
    np.testing.assert_array_equal(decode_image(path, "grayscale")[..., 0], expected)


def test_broken_png_still_raises_pillows_error(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(noise((40, 40)), "L").save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert _images._decode_fast(path, "grayscale", None, None) is None
    with pytest.raises(ImageDecodeError, match="cut.png"):
        decode_image(path, "grayscale")


def test_bomb_check_happens_before_the_fast_path(tmp_path):
    path = tmp_path / "big.png"
    Image.fromarray(noise((50, 50)), "L").save(path)
    assert _images._decode_fast(path, "grayscale", None, 100) is None
    with pytest.raises(ImageDecodeError, match="max_pixels"):
        decode_image(path, "grayscale", max_pixels=100)


# ------------------------------------------------------------------ JPEG fast path
def photo(shape):
    """A crop of a real photograph shipped with scikit-learn (``china.jpg``)."""
    from sklearn.datasets import load_sample_image

    img = load_sample_image("china.jpg")[100:100 + shape[0], 150:150 + shape[1]]
    return img if len(shape) == 3 else np.asarray(Image.fromarray(img).convert("L"))


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("source", ["L", "RGB"])
@pytest.mark.parametrize("color_mode", ["grayscale", "rgb"])
@pytest.mark.parametrize("target", [(64, 64), (28, 28), (100, 80), (90, 120), (150, 210)])
def test_jpeg_fast_path_equals_pillow(tmp_path, monkeypatch, progressive, source, color_mode, target):
    """Reduced-scale OpenCV decoding + the shared resize give the Pillow path's pixels."""
    path = tmp_path / "p.jpg"
    shape = (180, 240, 3) if source == "RGB" else (180, 240)
    Image.fromarray(photo(shape)).save(path, quality=90, progressive=progressive)
    fast = _images._decode_fast(path, color_mode, target, _images.DEFAULT_MAX_PIXELS)
    assert fast is not None, "a plain JPEG to be resized takes the fast path"
    slow = pil_only(monkeypatch, path, color_mode, target)
    assert fast.shape == slow.shape == target + ({"grayscale": 1, "rgb": 3}[color_mode],)
    np.testing.assert_array_equal(fast, slow)


def test_jpeg_decodes_at_reduced_scale_like_pillows_draft(tmp_path, monkeypatch):
    """The scale is Pillow's draft() choice: the largest of 1/8, 1/4, 1/2 still >= the target."""
    import cv2

    path = tmp_path / "p.jpg"
    Image.fromarray(photo((180, 240, 3))).save(path, quality=90)
    seen = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda buf, flag: seen.append(real(buf, flag).shape) or real(buf, flag))
    for target, decoded in [((20, 20), (23, 30, 3)), ((40, 40), (45, 60, 3)), ((60, 100), (90, 120, 3)),
                            ((120, 200), (180, 240, 3))]:
        _images._decode_fast(path, "rgb", target, None)
        assert seen.pop() == decoded
        with Image.open(path) as img:
            img.draft("RGB", (target[1], target[0]))
            assert img.size == (decoded[1], decoded[0])


def _jpeg_with_xmp_orientation(path):
    """A JPEG whose only orientation is in an XMP packet (Pillow reads it there too)."""
    Image.fromarray(photo((60, 80, 3))).save(path, quality=90)
    xmp = (b'http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
           b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
           b'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
    data = path.read_bytes()
    segment = b"\xff\xe1" + (len(xmp) + 2).to_bytes(2, "big") + xmp
    path.write_bytes(data[:2] + segment + data[2:])


def test_jpegs_that_pillow_must_handle_fall_back(tmp_path, monkeypatch):
    """Rotation (EXIF or XMP), CMYK, truncation, RGBA, no resize, bombs: never the fast path."""
    target = (32, 32)
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(photo((60, 80, 3))).save(rotated, exif=exif, quality=90)
    upright = tmp_path / "upright.jpg"
    exif[0x0112] = 1
    Image.fromarray(photo((60, 80, 3))).save(upright, exif=exif, quality=90)
    xmp = tmp_path / "xmp.jpg"
    _jpeg_with_xmp_orientation(xmp)
    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(photo((60, 80, 3))).convert("CMYK").save(cmyk, quality=90)
    cut = tmp_path / "cut.jpg"
    Image.fromarray(photo((60, 80, 3))).save(cut, quality=90)
    cut.write_bytes(cut.read_bytes()[:-200])

    assert _images._decode_fast(upright, "rgb", target, None) is not None  # orientation 1: nothing to do
    for path in (rotated, xmp, cmyk, cut):
        assert _images._decode_fast(path, "rgb", target, None) is None, path.name
    assert _images._decode_fast(upright, "rgba", target, None) is None
    assert _images._decode_fast(upright, "rgb", None, None) is None
    assert _images._decode_fast(upright, "rgb", target, 100) is None

    # And Pillow does what they need: rotates, converts, reports.
    assert Image.open(xmp).getexif().get(0x0112) == 6
    for path in (rotated, xmp):
        out = decode_image(path, "rgb", (40, 30))
        expected = _images._resize(np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB")), (40, 30))
        np.testing.assert_array_equal(out, expected)
    assert decode_image(cmyk, "rgb", target).shape == (32, 32, 3)
    with pytest.raises(ImageDecodeError, match="cut.jpg"):
        decode_image(cut, "rgb", target)
    with pytest.raises(ImageDecodeError, match="max_pixels"):
        decode_image(upright, "rgb", target, max_pixels=100)


def test_resize_shrinks_by_area_and_enlarges_bilinearly():
    """Shrinking averages the covered pixels (no aliasing); enlarging interpolates."""
    stripes = np.zeros((8, 8), np.uint8)
    stripes[:, ::2] = 200  # one-pixel stripes: nearest-neighbour would keep only one colour
    small = _images._resize(stripes, (4, 4))
    np.testing.assert_array_equal(small, np.full((4, 4), 100, np.uint8))
    ramp = np.array([[0, 100, 200]], np.uint8)
    big = _images._resize(ramp, (1, 9))
    assert big[0, 0] == 0 and big[0, -1] == 200
    assert len(np.unique(big)) > 3, "enlarging interpolates between the pixels, not blocks of copies"
    colour = np.zeros((10, 10, 3), np.uint8)
    assert _images._resize(colour, (5, 5)).shape == (5, 5, 3)
    one = np.zeros((10, 10, 1), np.uint8)
    assert _images._resize(one, (5, 6)).shape == (5, 6, 1)
    assert _images._resize(one, (10, 10)) is one


# -------------------- files named like images that are not (icons, named pipes)
def _ico_with_a_big_png(side):
    """An ICO whose directory says 16x16 but whose embedded PNG is side x side (mostly zeros)."""
    buf = io.BytesIO()
    Image.new("L", (side, side)).save(buf, "PNG")
    png = buf.getvalue()
    header = b"\x00\x00\x01\x00\x01\x00"
    entry = bytes([16, 16, 0, 0]) + (1).to_bytes(2, "little") + (32).to_bytes(2, "little") \
        + len(png).to_bytes(4, "little") + (6 + 16).to_bytes(4, "little")
    return header + entry + png


def test_an_icon_named_png_is_refused_before_its_image_is_decoded(tmp_path, monkeypatch):
    (tmp_path / "icon.png").write_bytes(_ico_with_a_big_png(3000))
    decoded = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: (decoded.append(self.size), real_load(self))[1])
    loader = ImageFolderLoader(tmp_path, verbose=0)
    for call in (lambda: loader.fit(["icon"]),
                 lambda: loader.set_params(color_mode="grayscale", target_size=None).transform(["icon"])):
        with pytest.raises(ImageDecodeError, match=r"icon\.png: an ICO icon, not an image of an accepted format "
                                                   r"\(PNG, JPEG, .*\); refused"):
            call()
    # The 3000x3000 image inside is never decoded (older Pillow loads a 1x256 palette of its own on open).
    assert [size for size in decoded if size[0] * size[1] > 16 * 16] == []


def _in_a_child(code, timeout=60):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_named_like_an_image_is_refused_at_once(tmp_path):
    write_images(tmp_path, [np.zeros((4, 4), np.uint8)], ids=["ok"])
    os.mkfifo(tmp_path / "pipe.png")
    code = (f"from skimgclf import ImageFolderLoader\n"
            f"loader = ImageFolderLoader({str(tmp_path)!r}, color_mode='grayscale', target_size=None, verbose=0)\n"
            "for call in (lambda: loader.transform(['ok', 'pipe']), lambda: ImageFolderLoader("
            f"{str(tmp_path)!r}, verbose=0).fit(['pipe'])):\n"
            "    try:\n        call()\n    except ValueError as exc:\n        print(exc)\n")
    result = _in_a_child(code)  # a hang fails the test through the timeout
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, result.stderr
    for line in lines:
        assert "pipe.png: a named pipe, not an image file; only regular files are read" in line


# --------------------------------------------------------- decompression bombs
def _png(path, arr):
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(path)


@pytest.fixture
def folder(tmp_path):
    """``tmp_path/images`` with two valid 8x8 PNGs, ``0`` and ``1``."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        _png(images / f"{i}.png", np.full((8, 8), 40 * i))
    return images


def _loader(images, **kw):
    kw.setdefault("target_size", (8, 8))
    return ImageFolderLoader(images, verbose=0, cache=False, **kw)


def _png_header_only(path, width, height):
    """A valid PNG signature and IHDR declaring ``width x height``, one tiny IDAT, IEND."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) \
        + chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def _forbid_decoding_larger_than(monkeypatch, n_pixels):
    real_load = ImageFile.ImageFile.load

    def load(self):
        if self.size[0] * self.size[1] > n_pixels:
            pytest.fail(f"pixel data of a {self.size} image decoded")
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


@pytest.mark.parametrize("side, expected", [
    (9_000, ("image of 9000x9000 pixels exceeds max_pixels=64000000 (possible decompression bomb); "
             "refused before decoding")),
    (100_000, ("Image size (10000000000 pixels) exceeds limit of 178956970 pixels, could be decompression "
               "bomb DOS attack. (possible decompression bomb; Pillow's limit, PIL.Image.MAX_IMAGE_PIXELS, "
               "applies whatever max_pixels is); refused before decoding")),
])
def test_png_declaring_huge_dimensions_is_refused_before_decoding(folder, monkeypatch, side, expected):
    path = _png_header_only(folder / "bomb.png", side, side)
    assert path.stat().st_size < 200
    _forbid_decoding_larger_than(monkeypatch, 64)
    with pytest.raises(ImageDecodeError) as info:
        _loader(folder).fit_transform(["0", "bomb"])
    assert str(info.value) == f"row 1: id 'bomb': {path}: {expected}"


def test_lowered_max_pixels_refuses_a_real_image_before_decoding(folder, monkeypatch):
    _png(folder / "big.png", np.zeros((16, 16)))
    assert _loader(folder, target_size=None).fit_transform(["big"]).shape == (1, 16, 16, 1)
    _forbid_decoding_larger_than(monkeypatch, 64)
    with pytest.raises(ImageDecodeError,
                       match=r"big\.png: image of 16x16 pixels exceeds max_pixels=100 "
                             r"\(possible decompression bomb\); refused before decoding"):
        _loader(folder, max_pixels=100).fit_transform(["big"])


# ------------------ damaged files, bit depths, palettes, colour modes, rotation
def _png_bytes(arr):
    buf = io.BytesIO()
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("cache", [True, False])
def test_truncated_image(images, cache):
    data = _png_bytes(np.random.default_rng(0).integers(0, 255, (8, 8)))
    (images / "cut.png").write_bytes(data[: len(data) - 30])
    with pytest.raises(ImageDecodeError, match=re.escape(
            f"row 0: id 'cut': {images / 'cut.png'}: cannot decode image (image file is truncated)")):
        gray_loader(images, cache=cache).fit_transform(["cut"])


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.mark.parametrize("cache", [True, False])
def test_corrupt_pixel_data(images, cache):
    """A structurally valid PNG (right chunks and CRCs) whose compressed pixel data is garbage."""
    ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0)
    garbage = bytes(np.random.default_rng(1).integers(0, 256, 40, dtype=np.uint8))
    (images / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", garbage)
                                     + _chunk(b"IEND", b""))
    with pytest.raises(ImageDecodeError) as info:
        gray_loader(images, cache=cache).fit_transform(["0", "bad"])
    assert str(info.value).startswith(f"row 1: id 'bad': {images / 'bad.png'}: cannot decode image (")


def test_text_file_named_png(images):
    (images / "notes.png").write_text("id,label\nthis is not an image\n")
    with pytest.raises(ImageDecodeError, match=re.escape(
            f"row 0: id 'notes': {images / 'notes.png'}: not a readable image file")):
        gray_loader(images).fit_transform(["notes"])


def test_zero_byte_file(images):
    (images / "empty.png").write_bytes(b"")
    with pytest.raises(ImageDecodeError, match=re.escape(
            f"row 0: id 'empty': {images / 'empty.png'}: empty file (0 bytes), not an image")):
        gray_loader(images).fit_transform(["empty"])


def test_16bit_png_is_scaled_not_clipped(images):
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16).repeat(2, axis=0)
    Image.fromarray(values).save(images / "deep.png")
    assert Image.open(images / "deep.png").mode.startswith("I")
    X = gray_loader(images, target_size=None).fit_transform(["deep"])
    np.testing.assert_allclose(X[0, 0, :, 0], values[0] / 65535, atol=1 / 255)
    assert 0.45 < X[0, 0, 2, 0] < 0.55  # clipping at 255 would give 1.0


def test_palette_png_uses_palette_colours(images):
    img = Image.fromarray(np.array([[0, 1], [2, 1]], dtype=np.uint8), mode="P")
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    img.save(images / "pal.png")
    assert Image.open(images / "pal.png").mode == "P"
    X = gray_loader(images, target_size=None, color_mode="rgb", scale=None).fit_transform(["pal"])
    assert X[0, 0, 1].tolist() == [255, 0, 0] and X[0, 1, 0].tolist() == [0, 0, 255]
    gray = gray_loader(images, target_size=None, scale=None).fit_transform(["pal"])
    assert gray[0, 0, 1, 0] == 76  # luminance of pure red (ITU-R 601-2), not the index 1


def test_rgba_png(images):
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 1] = 200
    arr[..., 3] = 128
    Image.fromarray(arr, mode="RGBA").save(images / "alpha.png")
    rgba = gray_loader(images, target_size=None, color_mode="rgba", scale=None).fit_transform(["alpha"])
    assert rgba.shape == (1, 4, 4, 4) and rgba[0, 0, 0].tolist() == [0, 200, 0, 128]
    rgb = gray_loader(images, target_size=None, color_mode="rgb", scale=None).fit_transform(["alpha"])
    assert rgb.shape == (1, 4, 4, 3) and rgb[0, 0, 0].tolist() == [0, 200, 0]


def test_cmyk_jpeg(images):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(images / "red.jpg", quality=95)
    assert Image.open(images / "red.jpg").mode == "CMYK"
    X = gray_loader(images, target_size=None, color_mode="rgb", scale=None, suffix=".jpg").fit_transform(["red"])
    r, g, b = X[0, 4, 4]
    assert r > 240 and g < 15 and b < 15


def test_exif_rotated_jpeg(images):
    arr = np.zeros((8, 16), np.uint8)  # 16 wide, 8 high; bright left half
    arr[:, :8] = 255
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    img.save(images / "rot.jpg", exif=exif, quality=95)
    X = gray_loader(images, target_size=None, scale=None, suffix=".jpg").fit_transform(["rot"])
    assert X.shape == (1, 16, 8, 1)  # displayed portrait
    assert X[0, :6, :, 0].mean() > 200 and X[0, 10:, :, 0].mean() < 50  # left half is now on top
    X = gray_loader(images, target_size=(4, 2), scale=None, suffix=".jpg").fit_transform(["rot"])
    assert X[0, 0, :, 0].mean() > 200 and X[0, 3, :, 0].mean() < 50
