"""The synthetic photos' scenes: what one photo shows, drawn at random, and its rendering.

Scene model (one image, all random choices from its own generator, which
`data.synthetic.generate` seeds ``SeedSequence(seed, (0, i))``, sampled before rendering so the
same seed gives the same scene at every image size):

* background: either a landscape -- gradient sky (day, sunset, overcast, dusk) over a textured
  ground (grass, sand, water, soil, snow) split by a possibly tilted horizon -- or a textured
  backdrop (wall/fabric with lighting gradient, blotches, grain and optional stripes);
* clutter: 0..6 small distractor shapes in random colours;
* subject: exactly one shaded filled shape (disk, ellipse, rectangle, triangle, diamond, pentagon),
  drawn on top; its colour is the local background colour moved a fraction ``contrast`` of the way
  towards a far-off target colour, so low contrast really is faint. ``masks`` is its footprint;
* camera: Gaussian blur (sigma up to 2.5 px at 64 px, scaled with the image) and exposure
  (brighten towards white, washing the image out, or darken towards black), then sensor grain.

`factors` reads a scene's composition factors, which `data.synthetic` rates into a score.
"""

import colorsys
import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

MAX_CLUTTER = 6
MAX_BLUR = 2.5  # Gaussian sigma in pixels of a 64 px image
MAX_TILT = 12.0  # degrees
MIN_CONTRAST = 0.06
FACTOR_NAMES = ("thirds_distance", "contrast", "clutter", "exposure", "blur", "tilt", "size")
# The four thirds points of the frame (x, y), in image sides.
THIRDS_POINTS = np.array([[x, y] for x in (1 / 3, 2 / 3) for y in (1 / 3, 2 / 3)])

SKIES = (  # (zenith, horizon) colours
    ((0.22, 0.42, 0.78), (0.68, 0.80, 0.94)),  # clear day
    ((0.30, 0.28, 0.52), (0.98, 0.64, 0.36)),  # sunset
    ((0.58, 0.60, 0.64), (0.82, 0.83, 0.85)),  # overcast
    ((0.10, 0.12, 0.30), (0.55, 0.42, 0.55)),  # dusk
)
GROUNDS = (  # (near horizon, bottom) colours, grain strength
    ((0.30, 0.52, 0.22), (0.14, 0.30, 0.10), 0.07),  # grass
    ((0.86, 0.76, 0.55), (0.70, 0.58, 0.40), 0.04),  # sand
    ((0.20, 0.40, 0.55), (0.08, 0.22, 0.36), 0.03),  # water
    ((0.48, 0.36, 0.24), (0.30, 0.21, 0.13), 0.06),  # soil
    ((0.90, 0.92, 0.95), (0.76, 0.80, 0.86), 0.02),  # snow
)
SHAPES = ("disk", "ellipse", "rectangle", "triangle", "diamond", "pentagon")


def sample_scene(rng: np.random.Generator) -> dict:
    """Draws every random choice of one photo (size-independent, in fractions of the side)."""
    p: dict = {}
    p["landscape"] = bool(rng.random() < 0.75)
    p["sky"] = int(rng.integers(len(SKIES)))
    p["ground"] = int(rng.integers(len(GROUNDS)))
    p["jitter"] = rng.uniform(-0.05, 0.05, size=(4, 3))
    p["horizon"] = float(rng.uniform(0.38, 0.70))
    p["tilt"] = float(rng.uniform(-MAX_TILT, MAX_TILT)) if p["landscape"] else 0.0
    p["wall_hsv"] = (
        float(rng.random()),
        float(rng.uniform(0.1, 0.45)),
        float(rng.uniform(0.3, 0.8)),
    )
    p["stripes"] = (
        int(rng.integers(3)),
        float(rng.uniform(4, 14)),
        float(rng.uniform(0, 2 * np.pi)),
    )
    p["blotch"] = rng.standard_normal((6, 6, 3)).astype(np.float32)
    p["grain_seed"] = int(rng.integers(2**31))

    p["shape"] = SHAPES[int(rng.integers(len(SHAPES)))]
    p["radius"] = float(rng.uniform(0.07, 0.20))
    p["aspect"] = float(rng.uniform(0.6, 1.0))
    p["angle"] = float(rng.uniform(0, 360))
    r = p["radius"]
    if rng.random() < 0.5:  # many photographers aim for a thirds point
        thirds = np.array([1 / 3, 2 / 3])
        c = thirds[rng.integers(2, size=2)] + rng.normal(0, 0.05, size=2)
    else:
        c = rng.uniform(0.1, 0.9, size=2)
    p["center"] = np.clip(c, r * 0.6, 1 - r * 0.6)
    p["contrast"] = float(rng.uniform(MIN_CONTRAST, 1.0))
    p["target_hue"] = float(rng.random())
    p["target_sat"] = float(rng.uniform(0.5, 0.95))
    p["light"] = float(rng.uniform(0, 2 * np.pi))

    n = int(rng.integers(MAX_CLUTTER + 1))
    p["clutter"] = [
        (
            SHAPES[int(rng.integers(len(SHAPES)))],
            rng.uniform(0.03, 0.97, size=2),
            float(rng.uniform(0.035, 0.075)),
            float(rng.uniform(0, 360)),
            colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.3, 0.9), rng.uniform(0.15, 0.95)),
        )
        for _ in range(n)
    ]
    p["exposure"] = float(rng.uniform(-1.0, 1.0))
    p["blur"] = float(rng.uniform(0.0, MAX_BLUR))
    return p


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates [S, S, 1] (y, x), cached per size (rendering hot path)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    return yy[..., None], xx[..., None]


@functools.lru_cache(maxsize=8)
def _interp_matrix(src: int, size: int) -> np.ndarray:
    """[size, src] bilinear interpolation weights (edge-clamped), cached per size."""
    pos = np.clip((np.arange(size) + 0.5) * src / size - 0.5, 0, src - 1)
    lo = np.minimum(np.floor(pos).astype(int), src - 2)
    frac = (pos - lo).astype(np.float32)
    m = np.zeros((size, src), np.float32)
    m[np.arange(size), lo] = 1 - frac
    m[np.arange(size), lo + 1] = frac
    return m


def _upsample(small: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of an [h, w, C] float array to [size, size, C] (smooth blotches)."""
    a = _interp_matrix(small.shape[0], size)
    b = _interp_matrix(small.shape[1], size)
    return np.matmul(b, np.tensordot(a, small, axes=(1, 0)))


def _f32(colour, jitter) -> np.ndarray:
    """Colour (+ jitter) as float32, so image maths stays in float32 (speed)."""
    return (np.asarray(colour) + jitter).astype(np.float32)


def _background(p: dict, size: int, grain: np.random.Generator) -> np.ndarray:
    """Sky-over-ground landscape or textured backdrop, float [S, S, 3] in [0, 1]."""
    yy, xx = _grid(size)
    blotch = _upsample(p["blotch"], size)
    blotch = 0.8 * blotch[..., :1] + 0.25 * blotch  # mostly light/shade, a little tint
    fine = grain.standard_normal((size, size, 1), dtype=np.float32)
    if p["landscape"]:
        zen, hor = (_f32(c, p["jitter"][k]) for k, c in enumerate(SKIES[p["sky"]]))
        near, far, g_amp = GROUNDS[p["ground"]]
        near, far = _f32(near, p["jitter"][2]), _f32(far, p["jitter"][3])
        slope = math.tan(math.radians(p["tilt"]))
        h_y = p["horizon"] * size + slope * (xx - size / 2)  # horizon height per column
        t_sky = np.clip(yy / np.maximum(h_y, 1.0), 0, 1)
        sky = zen + (hor - zen) * t_sky**0.8 + 0.02 * blotch
        t_gr = np.clip((yy - h_y) / np.maximum(size - h_y, 1.0), 0, 1)
        ground = near + (far - near) * t_gr + 0.05 * blotch + g_amp * fine
        w = np.clip(yy - h_y + 0.5, 0, 1)  # 1 px antialiased horizon
        img = sky * (1 - w) + ground * w + 0.01 * fine
    else:
        base = _f32(colorsys.hsv_to_rgb(*p["wall_hsv"]), 0.0)
        light = 1.1 - 0.3 * (yy / size) - 0.1 * np.abs(xx / size - 0.5)
        img = base * light + 0.06 * blotch + 0.035 * fine
        kind, freq, phase = p["stripes"]
        if kind:  # axis-aligned stripes (a level backdrop has no tilt)
            coord = yy if kind == 1 else xx
            img = img * (1 + 0.08 * np.sin(2 * np.pi * freq * coord / size + phase))
    return np.clip(img, 0, 1).astype(np.float32)


def _polygon(shape: str, cx: float, cy: float, r: float, aspect: float, angle: float) -> list:
    """Vertices of a shape (disks/ellipses use many vertices so they can rotate too)."""
    if shape in ("disk", "ellipse"):
        n, rad = 32, [r] * 32
    elif shape == "rectangle":
        n, rad = 4, [r] * 4
    elif shape == "triangle":
        n, rad = 3, [r * 1.15] * 3
    elif shape == "diamond":
        n, rad = 4, [r * 1.1, r * 0.75] * 2
    else:
        n, rad = 5, [r] * 5
    ry = aspect if shape in ("ellipse", "rectangle") else 1.0
    t0 = math.pi / 4 if shape == "rectangle" else -math.pi / 2  # flat-bottomed polygons
    ca, sa = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    pts = []
    for k in range(n):
        t = t0 + 2 * math.pi * k / n
        x, y = rad[k] * math.cos(t), rad[k] * ry * math.sin(t)
        pts.append((cx + ca * x - sa * y, cy + sa * x + ca * y))
    return pts


def _area(pts: list) -> float:
    """Shoelace area of a polygon (resolution-independent, so scores match across sizes)."""
    x, y = np.array(pts).T
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def render(p: dict, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Renders one scene at ``size`` px; returns (uint8 image, bool subject mask)."""
    ss = max(2, math.ceil(128 / size))  # supersampling factor for antialiased shapes
    big = size * ss
    grain = np.random.default_rng(p["grain_seed"])
    bg = _background(p, size, grain)

    # Subject colour: local background mean moved `contrast` of the way to a far target colour.
    cx, cy = p["center"] * size
    r = p["radius"] * size
    y0, y1 = int(max(cy - r, 0)), int(min(cy + r, size)) + 1
    x0, x1 = int(max(cx - r, 0)), int(min(cx + r, size)) + 1
    local = bg[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    lum = float(local @ np.array([0.299, 0.587, 0.114]))
    value = 0.95 if lum < 0.5 else 0.12  # opposite brightness to the background
    target = np.array(colorsys.hsv_to_rgb(p["target_hue"], p["target_sat"], value))
    colour = local + p["contrast"] * (target - local)
    # Shaded subject layer, only over the subject's bounding box (the rest is never seen).
    m = 1.2 * r + 2
    bx0, by0 = max(int(cx - m), 0), max(int(cy - m), 0)
    bx1, by1 = min(int(cx + m) + 1, size), min(int(cy + m) + 1, size)
    yy, xx = _grid(size)
    yy, xx = yy[by0:by1, bx0:bx1], xx[by0:by1, bx0:bx1]
    lx, ly = math.cos(p["light"]), math.sin(p["light"])
    shade = 1 + 0.12 * np.clip(((xx - cx) * lx + (yy - cy) * ly) / max(r, 1.0), -1, 1)
    subj = colour * shade + 0.015 * grain.standard_normal(shade.shape, dtype=np.float32)

    def to_big(a: np.ndarray) -> Image.Image:
        im = Image.fromarray(np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8), "RGB")
        return im.resize((a.shape[1] * ss, a.shape[0] * ss), Image.BILINEAR)

    canvas = to_big(bg)
    draw = ImageDraw.Draw(canvas)
    for shape, c, cr, angle, rgb in p["clutter"]:
        pts = _polygon(shape, c[0] * big, c[1] * big, cr * big, 0.7, angle)
        draw.polygon(pts, fill=tuple(int(v * 255) for v in rgb))
    mask_big = Image.new("L", (big, big), 0)
    pts = _polygon(p["shape"], cx * ss, cy * ss, r * ss, p["aspect"], p["angle"])
    ImageDraw.Draw(mask_big).polygon(pts, fill=255)
    box = (bx0 * ss, by0 * ss, bx1 * ss, by1 * ss)
    canvas.paste(to_big(subj), box[:2], mask_big.crop(box))

    img = canvas.reduce(ss)
    sigma = p["blur"] * size / 64
    if sigma > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(sigma))
    x = np.asarray(img, dtype=np.float32) / 255
    e = p["exposure"]
    if e > 0:  # overexposure: lift towards white, compressing contrast (washed out)
        x = x + 0.85 * e * (1 - x) ** 1.3
    else:  # underexposure: crush towards black
        x = x * (1 + 0.8 * e) ** 1.2
    x = x + 0.008 * grain.standard_normal(x.shape[:2] + (1,), dtype=np.float32)
    image = np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)
    mask = np.asarray(mask_big.reduce(ss)) >= 128
    if not mask.any():  # cannot happen for radius >= 0.07 * 32 px, kept as a guard
        mask[min(int(cy), size - 1), min(int(cx), size - 1)] = True
    return image, mask


def factors(p: dict) -> dict[str, float]:
    """The composition factors of a scene (`FACTOR_NAMES`), as `data.synthetic` rates them."""
    return {
        "thirds_distance": np.min(np.linalg.norm(THIRDS_POINTS - p["center"], axis=1)),
        "contrast": p["contrast"],
        "clutter": len(p["clutter"]),
        "exposure": p["exposure"],
        "blur": p["blur"],
        "tilt": abs(p["tilt"]),
        "size": _area(_polygon(p["shape"], 0, 0, p["radius"], p["aspect"], 0)),
    }
