"""Issue 10, data side: every Pillow mode to RGB, checks when a prepared subset is opened,
checksums and `verify`, the subset-identity check, empty classes, unreadable entries, and
interrupted `prepare` runs.  Tiny images made in tmp_path; no shared data needed."""

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
from conftest import slow_data_cli
from PIL import Image
from synthetic import make_source

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

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
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


# ---------------------------------------------------------------- items 4, 9: checks on opening


@pytest.fixture
def subset(tmp_path):
    return prepare_subset(make_source(tmp_path / "src"), tmp_path / "out", size=8, workers=0, quiet=True)


def rewrite_meta(path, **changes):
    meta = json.loads((path / "meta.json").read_text())
    meta.update(changes)
    (path / "meta.json").write_text(json.dumps(meta))


def truncate(file, keep):
    data = file.read_bytes()
    file.write_bytes(data[:keep])


DAMAGE = {
    # the cases
    "mean image of another size": (
        lambda p: np.save(p / "mean_image.npy", np.zeros((16, 16, 3), np.float32)),
        r"mean_image.npy has shape \(16, 16, 3\), expected \(8, 8, 3\)",
    ),
    "truncated images": (
        lambda p: truncate(p / "train_images.npy", 500),
        r"train_images.npy is truncated: 500 bytes, expected 1280",
    ),
    "zero-byte labels": (lambda p: truncate(p / "val_labels.npy", 0), r"val_labels.npy is empty \(0 bytes\)"),
    "invalid JSON": (
        lambda p: (p / "meta.json").write_text('{"size": 8, "wnids": ["a\tb"]}'),
        r"meta.json is not valid JSON \(Invalid control character at line 1",
    ),
    "size disagrees": (
        lambda p: rewrite_meta(p, size=16),
        r"train_images.npy has shape \(6, 8, 8, 3\), expected \(6, 16, 16, 3\)",
    ),
    # and the other ways each file can be wrong
    "count disagrees": (
        lambda p: rewrite_meta(p, counts={"train": 7, "val": 2}),
        r"train_images.npy has shape \(6, 8, 8, 3\), expected \(7, 8, 8, 3\) \(meta.json: 7 train",
    ),
    "labels out of range": (
        lambda p: np.save(p / "train_labels.npy", np.array([0, 0, 0, 1, 1, 2])),
        r"train_labels.npy: labels must lie in 0..1 .* found 0..2",
    ),
    "negative label": (
        lambda p: np.save(p / "train_labels.npy", np.array([0, 0, 0, 1, 1, -1])),
        r"train_labels.npy: labels must lie in 0..1 .* found -1..1",
    ),
    "labels of another length": (
        lambda p: np.save(p / "val_labels.npy", np.array([0])),
        r"val_labels.npy has shape \(1,\), expected \(2,\)",
    ),
    "float labels": (
        lambda p: np.save(p / "train_labels.npy", np.zeros(6)),
        r"train_labels.npy holds float64, expected integers or unsigned",
    ),
    "float images": (
        lambda p: np.save(p / "val_images.npy", np.zeros((2, 8, 8, 3), np.float32)),
        r"val_images.npy holds float32, expected uint8",
    ),
    "pickled objects": (
        lambda p: np.save(p / "train_labels.npy", np.array([{}] * 6, dtype=object)),
        r"train_labels.npy holds Python objects",
    ),
    "not a .npy": (
        lambda p: (p / "pca_eigvals.npy").write_bytes(b"hello world, not numpy"),
        r"pca_eigvals.npy is not a readable .npy array",
    ),
    "padded file": (
        lambda p: (p / "train_labels.npy").write_bytes((p / "train_labels.npy").read_bytes() + b"xx"),
        r"train_labels.npy is longer than its header says: \d+ bytes, expected",
    ),
    "eigenvectors shape": (
        lambda p: np.save(p / "pca_eigvecs.npy", np.eye(4, dtype=np.float32)),
        r"pca_eigvecs.npy has shape \(4, 4\), expected \(3, 3\)",
    ),
    "eigenvalues NaN": (
        lambda p: np.save(p / "pca_eigvals.npy", np.array([1, np.nan, 0], np.float32)),
        r"pca_eigvals.npy holds NaN",
    ),
    "empty meta.json": (lambda p: (p / "meta.json").write_text(""), r"meta.json is empty"),
    "meta.json not an object": (
        lambda p: (p / "meta.json").write_text("[1, 2]"),
        r"meta.json: expected a JSON object, found list",
    ),
    "meta.json without wnids": (
        lambda p: rewrite_meta(p, wnids=[]),
        r"meta.json: 'wnids' must be a non-empty",
    ),
    "meta.json bad count": (
        lambda p: rewrite_meta(p, counts={"train": -1, "val": 2}),
        r"meta.json: 'counts' must give a non-negative integer for 'train'",
    ),
    "meta.json names": (
        lambda p: rewrite_meta(p, class_names=["x"]),
        r"'class_names' must list one name per class",
    ),
    "meta.json not UTF-8": (
        lambda p: (p / "meta.json").write_bytes(b'{"size": "\xff"}'),
        r"meta.json cannot be read",
    ),
    "other split missing": (lambda p: (p / "val_images.npy").unlink(), r"val_images.npy is missing"),
    "folder instead of file": (
        lambda p: ((p / "val_labels.npy").unlink(), (p / "val_labels.npy").mkdir()),
        r"val_labels.npy is a folder",
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_subset_names_the_file_and_what_was_expected(subset, case, capsys):
    damage, message = DAMAGE[case]
    damage(subset)
    with pytest.raises(ValueError, match=message) as info:
        PreparedDataset(subset, "train")
    assert str(subset) in str(info.value) and "\n" not in str(info.value)
    assert cli_main(["info", str(subset)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert cli_main(["verify", str(subset)]) == 2


def test_damage_is_reported_where_the_trainer_opens_data(subset):
    from alexnet.datasets import open_split

    np.save(subset / "mean_image.npy", np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="mean_image.npy has shape"):
        open_split(subset, "val")


def test_a_damaged_subset_is_not_reused_silently(tmp_path):
    src = make_source(tmp_path / "src")
    out = prepare_subset(src, tmp_path / "out", size=8, workers=0, quiet=True)
    truncate(out / "train_images.npy", 300)
    with pytest.raises(
        ValueError, match="damaged prepared subset .*train_images.npy is truncated.*--overwrite"
    ):
        prepare_subset(src, out, size=8, workers=0, quiet=True)
    prepare_subset(src, out, size=8, workers=0, quiet=True, overwrite=True)
    assert len(PreparedDataset(out)) == 6


# ---------------------------------------------------------------- item 4: checksums and verify


def test_checksums_are_recorded_and_verified(subset, capsys):
    import hashlib

    meta = json.loads((subset / "meta.json").read_text())
    assert meta["checksum_algorithm"] == "sha256" and len(meta["checksums"]) == 7
    for name, digest in meta["checksums"].items():
        assert hashlib.sha256((subset / name).read_bytes()).hexdigest() == digest
    assert cli_main(["verify", str(subset)]) == 0
    out = capsys.readouterr().out
    assert "all checksums match" in out and out.count(": OK") == 7
    # flip one pixel: the structure still agrees, the checksum does not
    images = np.load(subset / "val_images.npy", mmap_mode="r+")
    images[1, 2, 3, 0] ^= 1
    images.flush()
    del images
    PreparedDataset(subset, "val")  # opening does not hash (cheap); verify does
    assert cli_main(["verify", str(subset)]) == 1
    out = capsys.readouterr().out
    assert "val_images.npy: MISMATCH" in out and out.count(": OK") == 6


def test_subsets_prepared_before_checksums_still_open(subset, capsys):
    meta = json.loads((subset / "meta.json").read_text())
    for key in ("checksums", "checksum_algorithm", "class_counts", "dropped_classes"):
        del meta[key]
    (subset / "meta.json").write_text(json.dumps(meta))
    assert len(PreparedDataset(subset)) == 6
    assert cli_main(["verify", str(subset)]) == 0
    assert "checksums unavailable" in capsys.readouterr().out
    assert cli_main(["info", str(subset)]) == 0
    assert "checksums: unavailable" in capsys.readouterr().out


# ---------------------------------------------------------------- item 8: same subset


def test_same_subset_after_the_folder_moved(tmp_path):
    import shutil

    from data import PreparedDataset as PD
    from data import same_subset, subset_differences, subset_fingerprint

    src = make_source(tmp_path / "src")
    a = prepare_subset(src, tmp_path / "a", size=8, workers=0, quiet=True)
    fingerprint = subset_fingerprint(a)
    assert json.loads(json.dumps(fingerprint)) == fingerprint  # storable in a checkpoint
    moved = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, moved)
    shutil.rmtree(a)
    assert same_subset(fingerprint, moved) and same_subset(PD(moved), moved)
    # prepared again from the same source with more workers: the same subset
    again = prepare_subset(src, tmp_path / "c", size=8, workers=2, quiet=True)
    assert subset_differences(fingerprint, again) == []
    # other counts, other classes, other S, other pixels
    fewer = prepare_subset(src, tmp_path / "d", size=8, per_class=2, workers=0, quiet=True)
    assert "train images 6 vs 4" in subset_differences(fingerprint, fewer)
    bigger = prepare_subset(src, tmp_path / "e", size=6, workers=0, quiet=True)
    assert "image size S 8 vs 6" in subset_differences(fingerprint, bigger)
    make_source(tmp_path / "src2", classes=("n00000001", "n00000003"))
    other = prepare_subset(tmp_path / "src2", tmp_path / "f", size=8, workers=0, quiet=True)
    assert any("classes differ" in d for d in subset_differences(fingerprint, other))
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(src / "train" / "n00000001" / "0.png")
    changed = prepare_subset(src, tmp_path / "g", size=8, workers=0, quiet=True)
    diffs = subset_differences(fingerprint, changed)
    assert "train_images.npy checksum differs" in diffs and not same_subset(fingerprint, changed)
    # a damaged folder is not the same subset: its check raises naming the file
    truncate(moved / "val_images.npy", 100)
    with pytest.raises(ValueError, match="val_images.npy is truncated"):
        same_subset(fingerprint, moved)


def test_same_subset_without_checksums_compares_the_covariance(tmp_path):
    from data import same_subset, subset_differences

    src = make_source(tmp_path / "src")
    a = prepare_subset(src, tmp_path / "a", size=8, workers=0, quiet=True)
    old = json.loads((a / "meta.json").read_text())
    del old["checksums"]
    assert same_subset(old, a)
    assert subset_differences(old, a, require_checksums=True) == [
        "checksums unavailable (the first subset records them)"
    ]
    old["rgb_covariance"][0][0] += 1.0
    assert not same_subset(old, a)


# ---------------------------------------------------------------- item 10: no silent empty class


def test_a_class_whose_images_are_all_unreadable_is_dropped_and_recorded(tmp_path):
    src = make_source(tmp_path / "src", classes=("n00000001", "n00000002", "n00000003"), train=2, val=1)
    for i in range(2):
        (src / "train" / "n00000002" / f"{i}.png").write_bytes(b"broken")
    (src / "classes.txt").write_text("n00000002\tsecond\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = prepare_subset(src, tmp_path / "out", size=8, workers=0, quiet=True)
    messages = [str(w.message) for w in caught]
    assert sum("skipping unreadable image" in m for m in messages) == 2
    assert [m for m in messages if m.startswith("dropping")] == [
        "dropping 1 class(es) with no readable training image: n00000002 (second): all 2 selected "
        "training images are unreadable; the remaining classes are relabelled 0..K-1 and meta.json "
        "lists the dropped ones"
    ]
    ds, val = PreparedDataset(out), PreparedDataset(out, "val")
    assert ds.wnids == ["n00000001", "n00000003"] and ds.num_classes == 2
    assert ds.labels.tolist() == [0, 0, 1, 1] and val.labels.tolist() == [0, 1]  # contiguous
    assert len(val.images) == 2  # the dropped class's validation image went with it
    # the kept images are the right ones: the first val image is n00000001's
    expected = load_image_square(src / "val" / "n00000003" / "0.png", 8)
    np.testing.assert_array_equal(val.images[1], expected)
    meta = ds.meta
    assert meta["dropped_classes"] == [
        {
            "wnid": "n00000002",
            "name": "second",
            "val_images_dropped": 1,
            "reason": "all 2 selected training images are unreadable",
        }
    ]
    assert meta["class_counts"] == {"train": [2, 2], "val": [1, 1]}
    assert len(meta["skipped"]) == 2
    with pytest.raises(RuntimeError, match=r"cannot read .*n00000002.*--strict"):
        prepare_subset(src, tmp_path / "strict", size=8, workers=0, quiet=True, strict=True)
    assert not (tmp_path / "strict").exists()


def test_a_class_left_without_training_images_by_val_fraction(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("n00000001_a", "n00000001_b", "n00000001_c", "n00000001_d", "n00000002_a"):
        Image.fromarray(PHOTO).save(flat / f"{name}.png")
    with pytest.raises(RuntimeError, match=r"n00000002 .*no training image was selected"):
        prepare_subset(flat, tmp_path / "s", size=6, val_fraction=0.75, workers=0, quiet=True, strict=True)
    with pytest.warns(UserWarning, match="dropping 1 class"):
        out = prepare_subset(flat, tmp_path / "o", size=6, val_fraction=0.75, workers=0, quiet=True)
    ds = PreparedDataset(out)
    assert ds.wnids == ["n00000001"] and ds.meta["dropped_classes"][0]["val_images_dropped"] == 1
    assert PreparedDataset(out, "val").labels.tolist() == [0, 0, 0]


# ---------------------------------------------------------------- item 11: unreadable entries listed


def test_symlink_loops_and_other_unreadable_entries_are_listed(tmp_path, monkeypatch):
    src = make_source(tmp_path / "src", classes=("n00000001", "n00000002", "n00000003"), train=2, val=0)
    folder = src / "train" / "n00000001"
    os.symlink(folder / "loop_b.png", folder / "loop_a.png")
    os.symlink(folder / "loop_a.png", folder / "loop_b.png")
    os.symlink(folder / "missing.png", folder / "broken.png")
    (folder / "dir.JPEG").mkdir()
    os.mkfifo(folder / "fifo.png")  # opening it would block forever
    denied = folder / "denied.png"
    Image.fromarray(PHOTO).save(denied)
    denied.chmod(0)
    # a class folder that cannot be listed (as root, chmod cannot deny it: simulate the error)
    real_iterdir = Path.iterdir

    def iterdir(self):
        if self.name == "n00000003":
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = prepare_subset(src, tmp_path / "out", size=8, workers=0, quiet=True)
    meta = json.loads((out / "meta.json").read_text())
    reasons = {Path(s["path"]).name: s["reason"] for s in meta["skipped"]}
    assert "Too many levels of symbolic links" in reasons["loop_a.png"]
    assert "Too many levels of symbolic links" in reasons["loop_b.png"]
    assert "No such file or directory" in reasons["broken.png"]
    assert "is a folder" in reasons["dir.JPEG"]
    assert "not a regular file" in reasons["fifo.png"]
    assert (
        "cannot list the class folder" in reasons["n00000003"] and "Permission denied" in reasons["n00000003"]
    )
    if os.geteuid() != 0:
        assert "Permission denied" in reasons["denied.png"]
    # the class that could not be listed is dropped with a warning, not silently absent
    assert meta["wnids"] == ["n00000001", "n00000002"]
    assert meta["dropped_classes"][0]["wnid"] == "n00000003"
    assert sum("loop_a.png" in str(w.message) for w in caught) == 1
    with pytest.raises(
        RuntimeError, match=r"cannot read .*n00000003: cannot list the class folder.*--strict"
    ):
        prepare_subset(src, tmp_path / "strict", size=8, workers=0, quiet=True, strict=True)
    monkeypatch.undo()
    with pytest.raises(RuntimeError, match=r"cannot read .*broken.png: FileNotFoundError.*--strict"):
        prepare_subset(src, tmp_path / "strict", size=8, workers=0, quiet=True, strict=True)


# ---------------------------------------------------------------- item 12: interrupted prepare


def _sigint_as_in_a_terminal():
    """In the child, before exec: SIGINT back to its default. A shell starts a background job with
    SIGINT ignored and every child inherits that (a CI runner or benchmarks/stress_tests.py may run
    the tests so), while a terminal's Ctrl-C reaches a program whose SIGINT is the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_slow_prepare(tmp_path, out, workers=2):
    src = make_source(tmp_path / "src", train=40, val=0, size=(8, 8))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [
            *slow_data_cli(0.1),
            "prepare",
            str(src),
            str(out),
            "--size",
            "8",
            "--workers",
            str(workers),
            "--quiet",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_sigint_as_in_a_terminal,
    )
    tmp = out.parent / f"{out.name}.tmp-{proc.pid}"
    deadline = time.time() + 30
    while not (tmp / "train_images.npy").exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline, "prepare did not start"
        time.sleep(0.05)
    time.sleep(0.5)  # the workers are decoding now
    return proc, tmp


def test_sigterm_removes_the_partial_output(tmp_path):
    out = tmp_path / "out"
    proc, tmp = start_slow_prepare(tmp_path, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert err.strip().splitlines() == [
        "python -m data prepare: stopped by SIGTERM; the partial output was removed"
    ]
    assert not tmp.exists() and not out.exists()


def test_ctrl_c_gives_one_line_and_no_worker_tracebacks(tmp_path):
    out = tmp_path / "out"
    proc, tmp = start_slow_prepare(tmp_path, out)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the whole process group
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines() == ["python -m data prepare: interrupted; the partial output was removed"]
    assert not tmp.exists() and not out.exists()


def test_a_folder_left_by_sigkill_is_removed_by_the_next_run(tmp_path, capsys):
    out = tmp_path / "out"
    proc, tmp = start_slow_prepare(tmp_path, out, workers=0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert tmp.is_dir()  # SIGKILL cannot be caught
    # a live run's folder is left alone
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f"out.tmp-{sleeper.pid}"
        live.mkdir()
        prepare_subset(tmp_path / "src", out, size=8, workers=0)
        assert "removed " + str(tmp) in capsys.readouterr().err
        assert not tmp.exists() and live.is_dir() and len(PreparedDataset(out)) == 80
    finally:
        sleeper.kill()
        sleeper.wait()
