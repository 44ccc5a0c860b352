"""A photo as each ViT family's published preprocessing makes it (Hugging Face's image
processors, PIL backend: `CLIPImageProcessor`, `SiglipImageProcessor`).

CLIP: the shorter side resized to `size` (the longer to int(size * long / short)), bicubic,
then the central size x size crop (top = (h - size) // 2, left likewise); mean
(0.48145466, 0.4578275, 0.40821073), std (0.26862954, 0.26130258, 0.27577711) of OpenAI's.
SigLIP: the whole photo resized to size x size (aspect not kept, nothing cropped), bicubic;
mean = std = 0.5 (values in [-1, 1]). Pixels are x / 255 before normalising.
"""

import numpy as np
from PIL import Image

from rsrl_jax.data import photo_decode, photos

MEAN = {"clip": (0.48145466, 0.4578275, 0.40821073), "siglip": (0.5, 0.5, 0.5)}
STD = {"clip": (0.26862954, 0.26130258, 0.27577711), "siglip": (0.5, 0.5, 0.5)}


def view(rgb: np.ndarray, family: str, size: int) -> np.ndarray:
    """uint8 [H, W, 3] -> the family's uint8 [size, size, 3] (module docstring)."""
    im = Image.fromarray(np.asarray(rgb, np.uint8), "RGB")
    w, h = im.size
    if family == "siglip":
        return np.asarray(im.resize((size, size), Image.Resampling.BICUBIC))
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    new = (size, new_long) if w <= h else (new_long, size)
    arr = np.asarray(im.resize(new, Image.Resampling.BICUBIC))
    top, left = (arr.shape[0] - size) // 2, (arr.shape[1] - size) // 2
    return arr[top : top + size, left : left + size]


def read(path: str, family: str, size: int, max_pixels: int = photos.DEFAULT_MAX_PIXELS):
    """The family's uint8 view of the photo file `path`, upright (EXIF); photos.BadPhoto."""
    return view(photo_decode.decode_upright(path, max_pixels), family, size)


def normalise(x, family: str, xp=np):
    """uint8 views [..., 3] -> float32 (x / 255 - mean) / std of `family` (`xp`: numpy or
    jax.numpy, so the jitted step normalises on the device)."""
    mean, std = xp.asarray(MEAN[family], np.float32), xp.asarray(STD[family], np.float32)
    return (xp.asarray(x, np.float32) / 255.0 - mean) / std
