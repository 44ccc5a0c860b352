"""predict and highlight: every path given is accounted for, photos read with the run's options."""

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import photo_factory as pf
import pytest

from rsrl_jax.data import user_photos as inference
from rsrl_jax.engine import predict

HEIC_BYTES = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64)


def jpeg(path, size=(40, 30)):
    rng = np.random.default_rng(len(str(path)))
    pf.Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(
        path, "JPEG", quality=90
    )


def issue_folder(root):
    """The issue's folder (.jpg, .jfif, .jpe, .JPEG, .HEIC) with what else a folder holds."""
    root.mkdir()
    for name in ("a.jpg", "b.jfif", "c.jpe", "D.JPEG"):
        jpeg(root / name)
    (root / "e.HEIC").write_bytes(HEIC_BYTES)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (root / "notes.txt").write_text("scores to check\n")
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1" + bytes(32))
    (root / "sub" / "deeper").mkdir(parents=True)
    pf.asymmetric().save(root / "sub" / "f.png")
    pf.save_float_tiff(str(root / "sub" / "deeper" / "g.tif"))
    return root


def relative(found, root):
    return [(os.path.relpath(f.path, root), f.skipped or f.error or "try") for f in found]


def test_folders_expand_to_every_file_below_them(tmp_path):
    root = issue_folder(tmp_path / "photos")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref\n")
    os.mkfifo(root / "pipe")
    os.symlink(root, root / "sub" / "loop")  # a link back up: searched once
    assert relative(inference.expand_paths([str(root)]), root) == [
        (".DS_Store", "hidden file"),
        (".git", "hidden folder, not searched"),
        ("D.JPEG", "try"),
        ("a.jpg", "try"),
        ("b.jfif", "try"),
        ("broken.jpg", "try"),
        ("c.jpe", "try"),
        ("e.HEIC", "try"),
        ("notes.txt", "try"),
        ("pipe", "not a regular file"),
        ("sub/f.png", "try"),
        ("sub/deeper/g.tif", "try"),
        ("sub/loop", f"a link to {os.path.realpath(root)}, already searched"),
    ]
    flat = relative(inference.expand_paths([str(root)], recursive=False), root)
    assert ("sub", "subfolder, not searched (--norecursive)") in flat
    assert not any(path.startswith("sub/") for path, _ in flat)
    # An empty folder found while searching is said too.
    (root / "sub" / "nothing").mkdir()
    assert (f"sub{os.sep}nothing", "empty folder: no files in it") in relative(
        inference.expand_paths([str(root)]), root
    )
    # Named on the command line, any file is tried (hidden or not); an empty folder is said.
    (tmp_path / "empty").mkdir()
    named = inference.expand_paths([str(root / ".DS_Store"), str(tmp_path / "empty")])
    assert relative(named, tmp_path) == [
        ("photos/.DS_Store", "try"),
        ("empty", "empty folder: no files in it"),
    ]
    assert not named[0].in_folder


def run_module(module, *args):
    cmd = [sys.executable, "-m", module, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_predict_gives_every_file_a_line(tiny_run, tmp_path):
    """The issue's example: five photo names, one HEIC, and the rest of a folder."""
    workdir = tiny_run[0]
    root = issue_folder(tmp_path / "photos")
    result = run_module("rsrl_jax.predict", f"--workdir={workdir}", root)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = {
        os.path.relpath(line["path"], root): line
        for line in map(json.loads, result.stdout.splitlines())
    }
    scored = {"a.jpg", "b.jfif", "c.jpe", "D.JPEG", "sub/f.png", "sub/deeper/g.tif"}
    assert {p for p, line in lines.items() if "score" in line} == scored
    assert set(lines) == scored | {"e.HEIC", "broken.jpg", "notes.txt", ".DS_Store"}
    assert "HEIC/HEIF photo: this format is not supported" in lines["e.HEIC"]["error"]
    assert "broken.jpg" in lines["broken.jpg"]["error"]
    assert lines["notes.txt"]["skipped"].startswith("not a photo")
    assert lines[".DS_Store"]["skipped"] == "hidden file"
    # The options the photos were read with are those the run recorded.
    assert (
        "photos are read as the run read them: data.stored_size=64, data.image_size=64 "
        "(central crop), data.max_pixels=89478485" in result.stderr
    )


def set_max_pixels(workdir, value):
    """As if the run had had `data.max_pixels=value`: its rounds' model contracts say so."""
    for meta_file in workdir.glob("fold_*/round_*/meta/metadata"):
        meta = json.loads(meta_file.read_text())
        meta["contract"]["max_pixels"] = value
        meta_file.write_text(json.dumps(meta))


def test_photos_are_read_with_the_runs_pixel_limit(tiny_run, tmp_path):
    """A run that allowed fewer pixels refuses what it would have refused in training; one
    that allowed more accepts it (today's code used Pillow's default whatever the run's)."""
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run[0], workdir)
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    jpeg(photos / "small.jpg", (40, 30))
    jpeg(photos / "big.jpg", (100, 60))  # 6000 pixels
    jpeg(photos / "sub" / "other.jpg", (50, 40))
    (photos / "notes.txt").write_text("not a photo\n")

    set_max_pixels(workdir, 5000)
    out = tmp_path / "highlights"
    result = run_module(
        "rsrl_jax.highlight", f"--workdir={workdir}", "--round=2", f"--out={out}", photos
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = {
        os.path.relpath(d["path"], photos): d for d in map(json.loads, result.stdout.splitlines())
    }
    assert set(lines) == {"big.jpg", "notes.txt", "small.jpg", "sub/other.jpg"}
    assert "big.jpg: decompression bomb refused" in lines["big.jpg"]["error"]
    assert "max_pixels=5000" in lines["big.jpg"]["error"]
    assert "skipped" in lines["notes.txt"]
    assert os.path.isfile(lines["small.jpg"]["png"]) and os.path.isfile(
        lines["sub/other.jpg"]["png"]
    )
    assert "data.max_pixels=5000" in result.stderr

    for limit, scored in ((5000, 0), (6000, 1)):
        set_max_pixels(workdir, limit)
        out = io.StringIO()
        assert predict.predict(str(workdir), [str(photos / "big.jpg")], out=out) == scored
        (line,) = map(json.loads, out.getvalue().splitlines())
        assert ("score" in line) == bool(scored), line
        if not scored:
            assert f"max_pixels={limit}" in line["error"]


@pytest.mark.parametrize("stored_size", [0, 80])
def test_network_photo_is_the_runs_stored_square_centre_cropped(tmp_path, stored_size):
    """The same view as training's evaluation: decoded at the stored size, central crop."""
    from conftest import tiny_config
    from rsrl_jax.data import photo_decode
    from rsrl_jax.data.preprocess import center_crops, network_photo, photo_options

    config = tiny_config({"data.stored_size": stored_size})
    options = photo_options(config)
    assert options.stored_size == (stored_size or 64) and options.image_size == 64
    path = str(tmp_path / "p.png")
    pf.asymmetric(96, 64).save(path)
    want = center_crops(photo_decode.decode_photo(path, options.stored_size)[None], 64)[0]
    np.testing.assert_array_equal(network_photo(path, config), want)
    assert network_photo(path, config).shape == (64, 64, 3)
