"""decode_photo: every kind of photo becomes an upright RGB uint8 square; bad files are refused."""

import os

import numpy as np
import photo_factory as pf
import pytest

from rsrl_jax.data.photos import BadPhoto, decode_photo


def decode(tmp_path, writer, size=16, name="photo", **kwargs):
    path = os.path.join(tmp_path, name)
    writer(path)
    return decode_photo(path, size, **kwargs)


def assert_rgb_square(a, size=16):
    assert a.shape == (size, size, 3) and a.dtype == np.uint8


@pytest.mark.parametrize(
    "writer, name, top_left, bottom_right",
    [
        (pf.save_rgb_jpeg, "p.jpg", (90, 160, 60), (90, 160, 60)),
        (pf.save_cmyk_jpeg, "c.jpg", (255, 0, 0), (255, 0, 0)),  # red ink -> red
        (pf.save_gray_png, "g.png", (77, 77, 77), (77, 77, 77)),
        (pf.save_gray16_png, "g16.png", (156, 156, 156), (156, 156, 156)),  # 40000 / 257
        (pf.save_rgb16_png, "c16.png", (255, 128, 0), (255, 128, 0)),
        (pf.save_palette_alpha_png, "pa.png", (0, 0, 255), (255, 255, 255)),  # clear -> white
        (pf.save_rgba_png, "rgba.png", (0, 200, 0), (255, 255, 255)),
        (pf.save_webp, "w.webp", (30, 60, 200), (30, 60, 200)),
    ],
)
def test_modes_become_rgb_uint8(tmp_path, writer, name, top_left, bottom_right):
    a = decode(tmp_path, writer, name=name)
    assert_rgb_square(a)
    np.testing.assert_allclose(a[0, 0], top_left, atol=3)
    np.testing.assert_allclose(a[-1, -1], bottom_right, atol=3)


def test_exif_orientation_is_applied(tmp_path):
    a = decode(tmp_path, pf.save_exif_rotated_jpeg, size=24, name="r.jpg")
    assert_rgb_square(a, 24)
    assert pf.red_corner_is_top_left(a)
    # The file's own pixels are on their side: without the EXIF turn the check fails.
    raw = np.asarray(pf.asymmetric().transpose(pf.Image.Transpose.ROTATE_90).resize((24, 24)))
    assert not pf.red_corner_is_top_left(raw)


def test_whole_photo_is_squashed_not_cropped(tmp_path):
    a = decode(tmp_path, lambda p: pf.asymmetric(96, 32).save(p), size=30, name="wide.png")
    red = (a[..., 0] > 180) & (a[..., 1] < 80)
    # The red block is the top-left third in both directions: it stays a third after squashing.
    assert abs(red.mean() - 1 / 9) < 0.03


@pytest.mark.parametrize(
    "writer, reason",
    [
        (pf.save_truncated_jpeg, "truncated"),
        (pf.save_empty, "empty file"),
        (pf.save_not_a_photo, "not a photo"),
        (pf.save_bomb_png, "decompression bomb"),
    ],
)
def test_bad_files_are_refused_naming_the_file(tmp_path, writer, reason):
    with pytest.raises(BadPhoto, match=reason) as e:
        decode(tmp_path, writer, name="culprit.jpg")
    assert "culprit.jpg" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(BadPhoto, match="missing") as e:
        decode_photo(os.path.join(tmp_path, "nowhere.jpg"), 16)
    assert "nowhere.jpg" in str(e.value)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # refused, as checked
def test_pixel_limit_is_configurable(tmp_path):
    path = os.path.join(tmp_path, "p.jpg")
    pf.save_rgb_jpeg(path, size=(100, 50))  # 5000 pixels
    with pytest.raises(BadPhoto, match="max_pixels=4999"):
        decode_photo(path, 16, max_pixels=4999)
    assert_rgb_square(decode_photo(path, 16, max_pixels=5000))
    # Above Pillow's own default limit, when the config allows it: header-only bomb refused
    # under the default, while the explicit limit is what the message names.
    bomb = os.path.join(tmp_path, "bomb.png")
    pf.save_bomb_png(bomb, side=12_000)  # 144 megapixels
    with pytest.raises(BadPhoto, match="max_pixels=89478485"):
        decode_photo(bomb, 16)
