"""Layouts, §2 preprocessing, statistics, atomic/reusable output, real shared data."""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data import PreparedDataset, load_image_square, prepare_subset, scan_source
from data.__main__ import main as cli_main

SHARED = Path(os.environ.get("ALEXNET_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def shared(name):
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"shared data {path} not available (set ALEXNET_DATA)")
    return path


def solid(path, color, size=(20, 16), mode="RGB", fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, format=fmt)
    return path


def make_tree(root):
    """train/val folder-per-class tree with awkward images: grayscale, CMYK, tiny, corrupt."""
    w1, w2 = "n00000001", "n00000002"
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for w in (w1, w2):
            (root / split / w).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                arr = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
                Image.fromarray(arr).save(root / split / w / f"{w}_{i}.JPEG")
    solid(root / "train" / w1 / "gray.JPEG", 128, mode="L")
    solid(root / "train" / w1 / "cmyk.JPEG", (0, 255, 255, 0), mode="CMYK")
    solid(root / "train" / w2 / "tiny.JPEG", (10, 200, 30), size=(5, 7))
    (root / "train" / w2 / "zz_corrupt.JPEG").write_bytes(b"not a jpeg at all")
    (root / "classes.txt").write_text(f"{w1}\tfirst thing, other name\n{w2}\tsecond\n")
    return w1, w2


def test_center_crop_after_rescale_on_non_square_image(tmp_path):
    # 90 x 30 image: three 30-px vertical stripes red | green | blue -> the centre square is green
    arr = np.zeros((30, 90, 3), np.uint8)
    arr[:, :30, 0] = 255
    arr[:, 30:60, 1] = 255
    arr[:, 60:, 2] = 255
    Image.fromarray(arr).save(tmp_path / "wide.png")
    out = load_image_square(tmp_path / "wide.png", 12)
    assert out.shape == (12, 12, 3) and out.dtype == np.uint8
    inner = out[:, 2:10].astype(int)
    assert (inner[..., 1] >= 250).all() and (inner[..., [0, 2]] <= 5).all()
    # tall image: top | middle | bottom, rescale to S=60 (upscaling) keeps the middle band
    tall = np.transpose(arr, (1, 0, 2)).copy()
    Image.fromarray(tall).save(tmp_path / "tall.png")
    out = load_image_square(tmp_path / "tall.png", 60)
    assert out.shape == (60, 60, 3) and (out[5:55, :, 1] >= 250).all()


def test_prepare_synthetic_tree_handles_real_world_images(tmp_path):
    w1, w2 = make_tree(tmp_path / "src")
    with pytest.warns(UserWarning, match="zz_corrupt"):
        out = prepare_subset(tmp_path / "src", tmp_path / "out", size=16, workers=2, quiet=True)
    ds = PreparedDataset(out)
    val = PreparedDataset(out, "val")
    assert len(ds) == 11 and len(val) == 4 and ds.images.shape == (11, 16, 16, 3)
    assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64
    assert ds.wnids == [w1, w2] and ds.class_names == ["first thing", "second"] and ds.num_classes == 2
    assert ds.labels.tolist() == [0] * 6 + [1] * 5
    names = [Path(p).name for p, _ in scan_source(tmp_path / "src").splits["train"]]
    # grayscale becomes equal RGB channels; CMYK (0,255,255,0) is red; the tiny image is upscaled
    files = sorted(n for n in names if n.startswith(("gray", "cmyk", "tiny")))
    assert files == ["cmyk.JPEG", "gray.JPEG", "tiny.JPEG"]
    meta = ds.meta
    assert meta["counts"] == {"train": 11, "val": 4} and meta["format_version"] == 1
    assert len(meta["skipped"]) == 1 and meta["skipped"][0]["path"].endswith("zz_corrupt.JPEG")
    order = sorted([str(p) for p, w in scan_source(tmp_path / "src").splits["train"] if w == w1])
    by_name = {Path(p).name: i for i, p in enumerate(order)}
    g = ds.images[by_name["gray.JPEG"]].astype(int)
    assert np.abs(g[..., 0] - g[..., 1]).max() <= 1 and abs(g.mean() - 128) < 3
    c = ds.images[by_name["cmyk.JPEG"]].astype(int)
    assert c[..., 0].min() > 240 and c[..., 1:].max() < 15
    t = ds.images[6 + 4].astype(int)  # w2 sorted: n..._0..3, tiny, (corrupt skipped)
    assert np.abs(t.mean(axis=(0, 1)) - [10, 200, 30]).max() < 6


def test_strict_fails_and_no_partial_output(tmp_path):
    make_tree(tmp_path / "src")
    with pytest.raises(RuntimeError, match="zz_corrupt"):
        prepare_subset(tmp_path / "src", tmp_path / "out", size=8, workers=0, strict=True, quiet=True)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("out.tmp")]


def test_mean_image_and_pca_statistics(tmp_path):
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (90, 90, 90), (10, 200, 60)]
    for i, c in enumerate(colors):
        solid(tmp_path / "src" / "train" / "n00000001" / f"{i}.png", c, size=(12, 12))
    # a non-uniform image makes the mean image vary per pixel
    arr = np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    (tmp_path / "src" / "train" / "n00000002").mkdir()
    Image.fromarray(arr).save(tmp_path / "src" / "train" / "n00000002" / "a.png")
    ds = PreparedDataset(prepare_subset(tmp_path / "src", tmp_path / "out", size=12, workers=0, quiet=True))
    np.testing.assert_array_equal(ds.images[5], arr)  # PNG at the same size: exact
    expected_mean = (np.array(colors, np.float64).sum(0) + arr) / 6
    np.testing.assert_allclose(ds.mean_image, expected_mean, rtol=1e-6)
    assert ds.mean_image.dtype == np.float32 and ds.mean_image.shape == (12, 12, 3)
    pixels = ds.images.reshape(-1, 3).astype(np.float64)
    cov = np.cov(pixels.T, bias=True)
    assert ds.eigvals.shape == (3,) and ds.eigvecs.shape == (3, 3)
    assert np.all(np.diff(ds.eigvals) <= 0)
    np.testing.assert_allclose(ds.eigvecs @ np.diag(ds.eigvals) @ ds.eigvecs.T, cov, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(ds.eigvecs.T @ ds.eigvecs, np.eye(3), atol=1e-5)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(cov))[::-1], ds.eigvals, rtol=1e-5)


def test_reuse_different_arguments_and_overwrite(tmp_path, capsys):
    make_tree(tmp_path / "src")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = prepare_subset(tmp_path / "src", tmp_path / "out", size=8, per_class=2, workers=0, quiet=True)
        stamp = (out / "train_images.npy").stat().st_mtime_ns
        assert prepare_subset(tmp_path / "src", tmp_path / "out", size=8, per_class=2, workers=0) == out
        assert (out / "train_images.npy").stat().st_mtime_ns == stamp
        assert "reusing" in capsys.readouterr().err
        with pytest.raises(ValueError, match="per_class"):
            prepare_subset(tmp_path / "src", tmp_path / "out", size=8, per_class=3, workers=0, quiet=True)
        prepare_subset(
            tmp_path / "src", tmp_path / "out", size=8, per_class=3, workers=0, quiet=True, overwrite=True
        )
    assert len(PreparedDataset(out)) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


def test_class_selection(tmp_path):
    for w in ("n00000003", "n00000001", "n00000002"):
        solid(tmp_path / "src" / w / "a.png", (1, 2, 3))
    kw = dict(size=4, workers=0, quiet=True)
    assert PreparedDataset(prepare_subset(tmp_path / "src", tmp_path / "a", num_classes=2, **kw)).wnids == [
        "n00000001",
        "n00000002",
    ]
    assert PreparedDataset(
        prepare_subset(tmp_path / "src", tmp_path / "b", classes="n00000003,n00000001", **kw)
    ).wnids == ["n00000001", "n00000003"]
    r1 = PreparedDataset(
        prepare_subset(tmp_path / "src", tmp_path / "c", random_classes=2, seed=4, **kw)
    ).wnids
    r2 = PreparedDataset(
        prepare_subset(tmp_path / "src", tmp_path / "d", random_classes=2, seed=4, **kw)
    ).wnids
    assert r1 == r2 and len(r1) == 2
    with pytest.raises(ValueError, match="n09999999"):
        prepare_subset(tmp_path / "src", tmp_path / "e", classes="n09999999", **kw)


def test_flat_val_layouts(tmp_path):
    w1, w2 = "n00000001", "n00000002"
    for w in (w1, w2):
        solid(tmp_path / "ilsvrc" / "train" / w / "a.JPEG", (1, 1, 1))
        solid(tmp_path / "tiny" / "train" / w / "images" / "a.JPEG", (1, 1, 1))
    for i in range(3):
        solid(tmp_path / "ilsvrc" / "val" / f"ILSVRC2012_val_{i:08d}.JPEG", (0, 0, 0))
        solid(tmp_path / "tiny" / "val" / "images" / f"val_{i}.JPEG", (0, 0, 0))
    (tmp_path / "ilsvrc" / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\nILSVRC2012_val_00000000,n00000002 1 2 3 4\n"
        f"ILSVRC2012_val_00000001,{w1} 1 2 3 4 {w1} 5 6 7 8\nILSVRC2012_val_00000002,{w2} 0 0 1 1\n"
    )
    (tmp_path / "tiny" / "val" / "val_annotations.txt").write_text(
        f"val_0.JPEG\t{w2}\t0\t0\t5\t5\nval_1.JPEG\t{w1}\t0\t0\t5\t5\nval_2.JPEG\t{w1}\t1\t1\t4\t4\n"
    )
    tree = scan_source(tmp_path / "ilsvrc")
    assert [w for _, w in tree.splits["val"]] == [w2, w1, w2]
    tree = scan_source(tmp_path / "tiny")
    assert [w for _, w in tree.splits["val"]] == [w2, w1, w1] and len(tree.splits["train"]) == 2
    # one label per line (1-based indices into synsets.txt, or wnids)
    (tmp_path / "ilsvrc" / "LOC_val_solution.csv").unlink()
    (tmp_path / "ilsvrc" / "synsets.txt").write_text(f"{w2}\tb\n{w1}\ta\n")
    (tmp_path / "ilsvrc" / "ILSVRC2012_validation_ground_truth.txt").write_text("1\n2\n1\n")
    tree = scan_source(tmp_path / "ilsvrc")
    assert [w for _, w in tree.splits["val"]] == [w2, w1, w2] and tree.name_of(w1) == "a"
    out = PreparedDataset(
        prepare_subset(tmp_path / "ilsvrc", tmp_path / "o", size=4, workers=0, quiet=True), "val"
    )
    assert out.labels.tolist() == [0, 1, 1]  # stored grouped by class


def test_flat_prefixed_folder_with_val_fraction(tmp_path):
    for w in ("n00000001", "n00000002"):
        for i in range(4):
            solid(tmp_path / "flat" / f"{w}_thing_{i}.JPEG", (i * 50, 0, 0))
    (tmp_path / "flat" / "synsets.txt").write_text("n00000001\tone\nn00000002\ttwo\n")
    out = prepare_subset(tmp_path / "flat", tmp_path / "o", size=4, val_fraction=0.25, workers=0, quiet=True)
    assert len(PreparedDataset(out)) == 6 and PreparedDataset(out, "val").labels.tolist() == [0, 1]
    out = prepare_subset(tmp_path / "flat", tmp_path / "p", size=4, workers=0, quiet=True)
    assert len(PreparedDataset(out)) == 8 and len(PreparedDataset(out, "val")) == 0


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        scan_source(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="expected one of these layouts"):
        scan_source(tmp_path / "empty")
    solid(tmp_path / "nolabels" / "photo.JPEG", (0, 0, 0))
    with pytest.raises(ValueError, match="ground-truth"):
        scan_source(tmp_path / "nolabels")
    with pytest.raises(ValueError, match="not a prepared subset"):
        PreparedDataset(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        PreparedDataset(tmp_path / "missing")
    assert cli_main(["prepare", str(tmp_path / "empty"), str(tmp_path / "o")]) == 2


def test_real_tiny_imagenet(tmp_path):
    src = shared("tiny-imagenet-10")
    assert (
        cli_main(
            [
                "prepare",
                str(src),
                str(tmp_path / "t"),
                "--size",
                "64",
                "--per-class",
                "5",
                "--val-per-class",
                "2",
                "--workers",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    ds, val = PreparedDataset(tmp_path / "t"), PreparedDataset(tmp_path / "t", "val")
    assert len(ds) == 50 and len(val) == 20 and ds.num_classes == 10
    assert ds.class_names[ds.wnids.index("n02124075")] == "Egyptian cat"
    # Tiny-ImageNet is already 64x64: S=64 keeps the pixels (up to resampling of JPEG decode)
    first = sorted((src / "train" / ds.wnids[0] / "images").glob("*.JPEG"))[0]
    np.testing.assert_allclose(
        ds.images[0].astype(float), np.asarray(Image.open(first).convert("RGB"), float), atol=2
    )
    assert ds.eigvals[0] > ds.eigvals[1] > ds.eigvals[2] > 0


def test_real_imagenette(tmp_path):
    src = shared("imagenette-224")
    out = prepare_subset(src, tmp_path / "n", size=64, per_class=3, val_per_class=1, workers=2, quiet=True)
    ds = PreparedDataset(out)
    assert len(ds) == 30 and len(PreparedDataset(out, "val")) == 10
    assert ds.class_names[0] == "tench" and ds.meta["skipped"] == []


def test_real_imagenet_samples_grayscale_and_small(tmp_path):
    src = shared("imagenet-samples")
    picked = [
        "n01871265",
        "n02096051",
        "n03866082",
        "n04254680",
        "n01440764",
    ]  # small, gray, 68x121, gray, rgb
    out = prepare_subset(src, tmp_path / "s", classes=picked, size=64, workers=0, quiet=True)
    ds = PreparedDataset(out)
    assert len(ds) == 5 and ds.images.shape == (5, 64, 64, 3)
    assert ds.class_names == ["tench", "tusker", "Airedale", "overskirt", "soccer_ball"]
    gray = ds.images[ds.wnids.index("n02096051")].astype(int)
    assert np.abs(gray[..., 0] - gray[..., 2]).max() <= 2
    full = scan_source(src)
    assert len(full.splits["train"]) == 1000 and len(full.wnids()) == 1000
