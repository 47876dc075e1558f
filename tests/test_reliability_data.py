"""Issue 10, data side: every Pillow mode to RGB, checks when a prepared subset is opened,
checksums and `verify`, the subset-identity check, empty classes, unreadable entries, and
interrupted `prepare` runs.  Tiny images made in tmp_path; no shared data needed."""
import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data import PreparedDataset, load_image_square, prepare_subset, to_rgb
from data.__main__ import main as cli_main

REPO = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(10)
PHOTO = RNG.integers(0, 256, (6, 6, 3), dtype=np.uint8)  # a tiny "photo"
GRAY = RNG.integers(0, 256, (6, 6), dtype=np.uint8)


def png16(path, arr):
    """Write a 16-bit-per-channel PNG by hand (Pillow cannot create 48/64-bit RGB images)."""
    h, w, c = arr.shape
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def over_white(color, alpha):
    """Compositing over white, as documented: a * c + (1 - a) * 255."""
    a = np.asarray(alpha, np.float64)[..., None] / 255.0
    return np.rint(a * np.asarray(color, np.float64) + (1 - a) * 255).astype(np.uint8)


def gray3(g):
    return np.repeat(np.asarray(g, np.uint8)[..., None], 3, axis=-1)


def load(path):
    """load_image_square at the image's own size: no resampling, exact pixels."""
    return load_image_square(path, 6)


# ---------------------------------------------------------------- item 1: Pillow modes

def test_sixteen_bit_grayscale_png_is_the_photo_not_white(tmp_path):
    # the case: a real photo scaled x257 stored as a 16-bit grayscale PNG (mode I;16)
    Image.fromarray(GRAY.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    np.testing.assert_array_equal(load(tmp_path / "g16.png"), gray3(GRAY))
    # a value between two 8-bit levels rounds to the nearest: round(v / 257)
    values = np.array([[0, 128, 129, 385, 65407, 65535]], np.uint16).repeat(6, 0)
    Image.fromarray(values).save(tmp_path / "levels.png")
    np.testing.assert_array_equal(load(tmp_path / "levels.png")[0, :, 0], [0, 0, 1, 1, 255, 255])


@pytest.mark.parametrize("mode", ["I;16", "I;16L", "I;16B", "I;16N"])
def test_every_sixteen_bit_mode(tmp_path, mode):
    wide = GRAY.astype(np.uint16) * 257
    im = Image.new(mode, (6, 6))
    im.frombytes(wide.astype(">u2" if mode == "I;16B" else "<u2" if mode != "I;16N" else "=u2").tobytes())
    assert np.asarray(im).astype(int).tolist() == wide.astype(int).tolist()
    np.testing.assert_array_equal(np.asarray(to_rgb(im)), gray3(GRAY))
    if mode in ("I;16", "I;16B"):  # the modes Pillow writes to TIFF as such
        im.save(tmp_path / "a.tif")
        np.testing.assert_array_equal(load(tmp_path / "a.tif"), gray3(GRAY))


def test_sixteen_bit_rgb_and_rgba_png(tmp_path):
    wide = PHOTO.astype(np.uint16) * 257
    np.testing.assert_array_equal(load(png16(tmp_path / "rgb16.png", wide)), PHOTO)
    alpha = np.full((6, 6, 1), 255, np.uint8)
    alpha[0, 0] = 0
    alpha[1, 1] = 128
    rgba = np.concatenate([wide, alpha.astype(np.uint16) * 257], axis=-1)
    expected = over_white(PHOTO, alpha[..., 0])
    np.testing.assert_array_equal(load(png16(tmp_path / "rgba16.png", rgba)), expected)
    assert (expected[0, 0] == 255).all()


def test_thirty_two_bit_integer_and_float_by_their_own_range(tmp_path):
    values = GRAY.astype(np.int32) * 1000  # a 0..255000 range: no 8- or 16-bit container
    Image.fromarray(values).save(tmp_path / "i32.tif")
    assert Image.open(tmp_path / "i32.tif").mode == "I"
    expected = np.rint(values * (255.0 / values.max())).astype(np.uint8)
    np.testing.assert_array_equal(load(tmp_path / "i32.tif"), gray3(expected))
    # negative values: the minimum maps to 0
    signed = GRAY.astype(np.int32) - 100
    expected = np.rint((signed - signed.min()) * (255.0 / (signed.max() - signed.min()))).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(to_rgb(Image.fromarray(signed))), gray3(expected))
    # a 0..1 float TIFF whose maximum is 1: exactly x 255
    floats = (GRAY / 255.0).astype(np.float32)
    floats[0, 0] = 1.0
    Image.fromarray(floats).save(tmp_path / "f.tif")
    assert Image.open(tmp_path / "f.tif").mode == "F"
    np.testing.assert_array_equal(load(tmp_path / "f.tif")[..., 0], np.rint(floats.astype(np.float64) * 255))
    # all zero stays black
    assert np.asarray(to_rgb(Image.new("F", (3, 3), 0.0))).max() == 0


def test_float_with_nan_is_refused_and_prepare_lists_why(tmp_path):
    floats = np.ones((6, 6), np.float32)
    floats[2, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        to_rgb(Image.fromarray(floats))
    src = tmp_path / "src" / "n00000001"
    src.mkdir(parents=True)
    Image.fromarray(PHOTO).save(src / "a.png")
    Image.fromarray(floats).save(src / "nan.tif")
    with pytest.warns(UserWarning, match="nan.tif"):
        out = prepare_subset(tmp_path / "src", tmp_path / "out", size=6, workers=0, quiet=True)
    meta = json.loads((out / "meta.json").read_text())
    assert [Path(s["path"]).name for s in meta["skipped"]] == ["nan.tif"]
    assert "non-finite" in meta["skipped"][0]["reason"]


def test_transparency_is_composited_over_white(tmp_path):
    alpha = RNG.integers(0, 256, (6, 6), dtype=np.uint8)
    alpha[0, 0], alpha[0, 1] = 0, 255
    rgba = np.dstack([PHOTO, alpha])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(load(tmp_path / "rgba.png"), over_white(PHOTO, alpha))
    Image.fromarray(np.dstack([GRAY, alpha]), "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(load(tmp_path / "la.png"), over_white(gray3(GRAY), alpha))
    # premultiplied modes (in memory only: Pillow cannot save them)
    opaque = np.dstack([PHOTO, np.full((6, 6), 255, np.uint8)])
    np.testing.assert_array_equal(np.asarray(to_rgb(Image.fromarray(opaque, "RGBA").convert("RGBa"))), PHOTO)
    la = Image.new("La", (2, 1))
    la.frombytes(bytes([100, 200, 0, 0]))  # (gray 100 premultiplied by 200/255, alpha 200), transparent
    np.testing.assert_array_equal(np.asarray(to_rgb(la))[0, :, 0], [int(over_white(128, 200)[0]), 255])


def test_palette_with_transparency_and_pa(tmp_path):
    pal = Image.new("P", (6, 6), 1)
    pal.putpalette([10, 20, 30, 200, 0, 0, 0, 90, 180])
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 2)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png")
    pal.save(tmp_path / "p.gif")
    for name in ("p.png", "p.gif"):
        out = load(tmp_path / name)
        assert out[0, 0].tolist() == [255, 255, 255]  # the transparent index, not (10, 20, 30)
        assert out[0, 1].tolist() == [0, 90, 180] and out[3, 3].tolist() == [200, 0, 0]
    pa = Image.new("PA", (6, 6), (1, 255))
    pa.putpalette([10, 20, 30, 200, 0, 0])
    pa.putpixel((0, 0), (1, 0))
    pa.putpixel((1, 0), (1, 51))
    pa.save(tmp_path / "pa.tif")
    out = load(tmp_path / "pa.tif")
    assert out[0, 0].tolist() == [255] * 3 and out[0, 1].tolist() == over_white((200, 0, 0), 51).tolist()
    assert out[5, 5].tolist() == [200, 0, 0]
    # grey colour key (PNG tRNS on an L image)
    key = Image.fromarray(GRAY)
    key.info["transparency"] = int(GRAY[0, 0])
    key.save(tmp_path / "lkey.png", transparency=int(GRAY[0, 0]))
    expected = gray3(GRAY)
    expected[GRAY == GRAY[0, 0]] = 255
    np.testing.assert_array_equal(load(tmp_path / "lkey.png"), expected)


def test_eight_bit_colour_models(tmp_path):
    bits = RNG.integers(0, 2, (6, 6)).astype(bool)
    Image.fromarray(bits).save(tmp_path / "one.png")
    assert Image.open(tmp_path / "one.png").mode == "1"
    np.testing.assert_array_equal(load(tmp_path / "one.png"), gray3(bits * 255))
    Image.fromarray(GRAY).save(tmp_path / "l.png")
    np.testing.assert_array_equal(load(tmp_path / "l.png"), gray3(GRAY))
    Image.fromarray(PHOTO).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(load(tmp_path / "rgb.png"), PHOTO)
    Image.new("CMYK", (6, 6), (0, 255, 255, 0)).save(tmp_path / "cmyk.tif")
    assert (load(tmp_path / "cmyk.tif") == [255, 0, 0]).all()
    Image.new("CMYK", (6, 6), (0, 0, 0, 255)).save(tmp_path / "k.jpg", quality=100)
    assert load(tmp_path / "k.jpg").max() <= 3  # full black ink is black
    Image.new("YCbCr", (6, 6), (255, 128, 128)).save(tmp_path / "ycc.tif")
    assert np.abs(load(tmp_path / "ycc.tif").astype(int) - 255).max() <= 1
    Image.new("LAB", (6, 6), (255, 128, 128)).save(tmp_path / "lab.tif")
    assert np.abs(load(tmp_path / "lab.tif").astype(int) - 255).max() <= 2  # L=100: white
    assert np.asarray(to_rgb(Image.new("HSV", (2, 2), (0, 255, 255)))).tolist() == [[[255, 0, 0]] * 2] * 2
    assert np.asarray(to_rgb(Image.new("RGBX", (2, 2), (1, 2, 3, 4))))[0, 0].tolist() == [1, 2, 3]


def test_a_mode_that_cannot_be_converted_is_named(monkeypatch):
    im = Image.new("RGB", (2, 2))

    def refuse(self, *args, **kwargs):
        raise ValueError("conversion from XYZ to RGB not supported")

    monkeypatch.setattr(Image.Image, "convert", refuse)
    with pytest.raises(ValueError, match="mode RGB cannot be converted to RGB"):
        to_rgb(im)


def test_prepare_and_predict_share_the_conversion(tmp_path):
    src = tmp_path / "src" / "n00000001"
    src.mkdir(parents=True)
    Image.fromarray(GRAY.astype(np.uint16) * 257).save(src / "g16.png")
    out = prepare_subset(tmp_path / "src", tmp_path / "out", size=6, workers=0, quiet=True)
    np.testing.assert_array_equal(PreparedDataset(out).images[0], gray3(GRAY))
    from alexnet.predict import preprocess
    images, _ = preprocess([src / "g16.png"], 6, np.zeros((6, 6, 3), np.float32), 4)
    np.testing.assert_array_equal(images[0], gray3(GRAY))
