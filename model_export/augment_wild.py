"""In-the-wild augmentation: training images as the kiosk's guide square and event photos show
faces (`TrainConfig.augment = "wild"`).

UTKFace's aligned crops hold the face at about 0.85-1.0 of the side, evenly lit and sharp; in the
kiosk's guide square a visitor's face is 0.24-0.71 of the side (model_export.wider), lit by the
room, off centre, often cut by the crop's edge, blurred by motion, noisy and compressed. Every
training image, face or non-face, gets the same random mix:

- geometry: content scaled to 0.35-1.25 of the crop (face fraction about 0.3-1.1), shifted by up
  to a quarter of the side, so some faces leave the crop partly; when the content shrinks, it is
  laid with a soft edge on a random scene patch (a training non-face at another zoom), so what
  surrounds a face is a real scene, not a mirrored copy of the face;
- light: exposure, gamma, a colour cast, a light gradient from one side, sometimes grey;
- optics and sensor: low resolution (down- and up-sampling), defocus or motion blur, noise, JPEG.

Non-faces go through the same paste onto scenes, so neither the soft edge nor any other change is
a cue for the label; scene patches at every zoom are the harder non-faces.

With `contexts` ("wild-context", `--augment wild-context`), faces that come with a wider crop
(wider-demog's 128x128, face at half the side) are reframed from that crop: the same draw of
scale and shift, but what surrounds the face is its own photo (hair, shoulders, the people
beside it), as in the kiosk's guide square, and a scene patch shows only where even the wider
crop ends. Every other image takes exactly the draws it takes without contexts.

With `people` as well ("wild-people", `--augment wild-people`), every other image, face or
non-face, is laid with probability `people` on the surroundings of a random in-the-wild crop
instead of a scene patch: that crop is reframed with the image's own scale and shift, so its
face lies under the content and what shows around it is a real photo's hair, shoulders,
clothes, other people and room. Faces and non-faces get these surroundings equally often, so
they are no cue for the label; the model must judge what is in the centre. (Why: at f = 0.5 the
shipped models miss a face among its surroundings, not a face with few pixels; the portraits,
most of the training faces, only ever showed a pasted scene around them. assets/models/README.md,
"Diagnostic of 2026-12-06 (night)". Run on 3 seeds, it lifted the baseline by 1.6-3.4 points and
cost the balanced model up to 3.5: a setting that lost, kept as an option.)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from model_export.augment import _jpeg
from model_export.data import DataError

ScaleDraw = Literal["uniform", "log"]
SCALE_DRAWS: tuple[ScaleDraw, ...] = ("uniform", "log")


@dataclass(frozen=True)
class WildConfig:
    """Probabilities and ranges; recorded in the model card."""

    flip: float = 0.5
    scale: tuple[float, float] = (0.35, 1.25)  # content side / crop side
    # How `scale` is drawn: "uniform" (every model until 2026-12-07), or "log" (log-uniform, as
    # a face's size spreads with the visitor's distance: density 1/s, so 60 % of draws fall
    # below 0.75, where the kiosk's faces are, against 44 % uniform; SCALE_DRAWS).
    scale_draw: ScaleDraw = "uniform"
    shift: float = 0.25  # offset of the content centre, fraction of the side, either way
    gain: tuple[float, float] = (0.35, 1.6)
    gamma: tuple[float, float] = (0.6, 1.7)
    cast: float = 0.2  # per-channel gain 1 +- cast (tungsten, daylight, LED casts)
    p_gradient: float = 0.3
    gradient: tuple[float, float] = (0.3, 1.0)  # darker side's gain
    p_gray: float = 0.05
    p_lowres: float = 0.4
    lowres: tuple[int, int] = (12, 40)  # pixels the content is sampled down to
    p_blur: float = 0.3
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    p_motion: float = 0.2
    motion: tuple[int, int] = (3, 7)  # kernel length in pixels
    noise: tuple[float, float] = (0.0, 0.05)
    p_jpeg: float = 0.5
    jpeg_quality: tuple[int, int] = (30, 90)


WILD = WildConfig()


def wild_config(scale_draw: str) -> WildConfig:
    """The wild augmentation's settings with the framing drawn `scale_draw` (SCALE_DRAWS)."""
    if scale_draw not in SCALE_DRAWS:
        raise DataError(f"unknown scale draw {scale_draw!r}; use one of {', '.join(SCALE_DRAWS)}")
    if scale_draw == WILD.scale_draw:
        return WILD
    return dataclasses.replace(WILD, scale_draw=scale_draw)


def draw_scale(cfg: WildConfig, rng: np.random.Generator) -> float:
    """The content's side / the crop's side for one image: one draw from `rng` either way, so
    every later draw of the image lines up whichever way the scale is drawn."""
    if cfg.scale_draw == "log":
        lo, hi = cfg.scale
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return float(rng.uniform(*cfg.scale))


# The augmentation names (model_export.batches) built on `augment_wild`, and those of them that
# read the wider crops --wider-train brings.
CONTEXT_AUGMENTS = ("wild-context", "wild-people")
WILD_AUGMENTS = ("wild", *CONTEXT_AUGMENTS)
# "wild-people": share of the images without their own wider crop (portraits, non-faces) laid
# on an in-the-wild crop's surroundings instead of a scene patch.
PEOPLE_SHARE = 0.5


@dataclass(frozen=True)
class Context:
    """Wider crops of some training faces, for `--augment wild-context`: `which` int [N] (per
    training image, its row of `crops`, -1 for none), `crops` uint8 [K, 128, 128, 3] with the
    face at half the side (wider-demog's half A)."""

    which: np.ndarray
    crops: np.ndarray


_AX = np.arange(64, dtype=np.float32) + 0.5  # pixel centres
_YY, _XX = np.mgrid[0:64, 0:64].astype(np.float32) / 63 - 0.5  # [64, 64] each, in [-0.5, 0.5]


def _scene(bg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 [64, 64, 3] non-face -> a scene patch: a random zoom (1-2x) at a random place."""
    z = rng.uniform(1.0, 2.0)
    side = 64 / z
    x0, y0 = rng.uniform(0, 64 - side, size=2)
    m = np.array([[z, 0, -x0 * z], [0, z, -y0 * z]], np.float32)
    out: np.ndarray = cv2.warpAffine(
        bg, m, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    return out


def place(img: np.ndarray, bg: np.ndarray, s: float, shift: tuple[float, float]) -> np.ndarray:
    """uint8 [N, N, 3] content laid at side `s` (fraction of the 64-pixel crop's side) about the
    centre and offset (dx, dy) sides; where it does not cover the crop, the scene `bg` shows
    through a soft edge. A tight 64x64 face at s is a face at s; a 128x128 wider-demog crop
    (face at half its side) at 2 s is also a face at s."""
    dx, dy = shift
    k = s * 64 / img.shape[0]  # source pixels -> crop pixels
    x0, y0 = (1 - s) * 32 + dx * 64, (1 - s) * 32 + dy * 64  # content's top-left in the crop
    m = np.array([[k, 0, x0], [0, k, y0]], np.float32)
    fg = cv2.warpAffine(img, m, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    # Mask [64, 64, 1]: the content's square (where it lands), edges feathered over ~6 % of
    # its side; a crop the content covers whole gets no scene at all.
    if x0 <= 0 and y0 <= 0 and x0 + 64 * s >= 64 and y0 + 64 * s >= 64:
        return fg
    feather = max(1.0, 64 * s * 0.06)
    ramp_x = np.clip(np.minimum(_AX - x0, x0 + 64 * s - _AX) / feather, 0, 1)
    ramp_y = np.clip(np.minimum(_AX - y0, y0 + 64 * s - _AX) / feather, 0, 1)
    mask = (ramp_y[:, None] * ramp_x[None, :])[..., None]
    blended: npt.NDArray[np.float64] = mask * fg + (1 - mask) * bg
    return blended.astype(np.uint8)


def _light(img: np.ndarray, cfg: WildConfig, rng: np.random.Generator) -> np.ndarray:
    """uint8 [64, 64, 3] -> float32 [64, 64, 3] in [0, 1] under other light: exposure, colour
    cast and gamma as one lookup table per channel, then a light gradient from one side."""
    gain = rng.uniform(*cfg.gain) * rng.uniform(1 - cfg.cast, 1 + cfg.cast, size=3)
    gamma = rng.uniform(*cfg.gamma)
    v = np.arange(256, dtype=np.float32)[:, None] / 255.0  # [256, 1]
    lut = (np.clip(v * gain[None, :], 0, 1) ** gamma * 255 + 0.5).astype(np.uint8)  # [256, 3]
    x = cv2.LUT(img, lut.reshape(256, 1, 3)).astype(np.float32) / 255.0
    if rng.random() < cfg.p_gradient:
        # Light from one side: gain falls linearly to `lo` across the crop at a random angle.
        lo = rng.uniform(*cfg.gradient)
        a = rng.uniform(0, 2 * np.pi)
        t = np.clip(0.5 + _XX * np.cos(a) + _YY * np.sin(a), 0, 1)
        x = x * (lo + (1 - lo) * t)[..., None]
    if rng.random() < cfg.p_gray:
        x = np.repeat(x.mean(axis=2, keepdims=True), 3, axis=2)
    return x.astype(np.float32)


def _optics(x: np.ndarray, cfg: WildConfig, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < cfg.p_lowres:
        side = int(rng.integers(cfg.lowres[0], cfg.lowres[1] + 1))
        small = cv2.resize(x, (side, side), interpolation=cv2.INTER_AREA)
        interp = cv2.INTER_NEAREST if rng.random() < 0.3 else cv2.INTER_LINEAR
        x = cv2.resize(small, (64, 64), interpolation=interp)
    if rng.random() < cfg.p_blur:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(*cfg.blur_sigma))
    if rng.random() < cfg.p_motion:
        n = int(rng.integers(cfg.motion[0], cfg.motion[1] + 1))
        line = np.zeros((n, n), np.float32)
        line[n // 2, :] = 1.0 / n
        rot = cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(line, rot, (n, n))  # [n, n] line at a random angle
        kernel = (kernel / max(float(kernel.sum()), 1e-6)).astype(np.float32)
        x = cv2.filter2D(x, -1, kernel)
    noisy = x + rng.standard_normal(x.shape, dtype=np.float32) * np.float32(rng.uniform(*cfg.noise))
    x = np.clip(noisy, 0, 1).astype(np.float32)
    if rng.random() < cfg.p_jpeg:
        x = _jpeg(x, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    return x.astype(np.float32)


def augment_wild(
    batch: np.ndarray,
    rng: np.random.Generator,
    scenes: np.ndarray,
    cfg: WildConfig = WILD,
    *,
    contexts: np.ndarray | None = None,
    which: np.ndarray | None = None,
    people: float = 0.0,
) -> np.ndarray:
    """uint8 RGB [B, 64, 64, 3] -> float32 [B, 64, 64, 3] in [0, 1]; `scenes` uint8 [M, 64, 64, 3]
    are non-face images the content is pasted on (M >= 1). Deterministic for a generator state.

    `contexts` uint8 [K, 128, 128, 3] (face at half the side) and `which` int [B] (row of
    `contexts` for each image, -1 for none): images with a row are reframed from it. `people`
    (needs `contexts`): the probability that an image without a row is laid on a random
    context's surroundings, its face covered by the content; 0 draws nothing extra, so the
    other modes' images come out bit for bit as before."""
    if len(scenes) == 0:
        raise ValueError("wild augmentation needs non-face images to paste content on")
    if (contexts is None) != (which is None) or (which is not None and len(which) != len(batch)):
        raise ValueError("contexts and which go together, one entry of which per image")
    if people and contexts is None:
        raise ValueError("people surroundings come from contexts: pass contexts and which")
    out = np.empty(batch.shape, np.float32)
    for i in range(len(batch)):
        in_context = which is not None and contexts is not None and which[i] >= 0
        src = contexts[int(which[i])] if in_context else batch[i]  # type: ignore[index]
        wide = src.shape[0] / 64  # 2 for a 128x128 context: the face is half its side
        img = src[:, ::-1] if rng.random() < cfg.flip else src
        s = draw_scale(cfg, rng)
        dx, dy = rng.uniform(-cfg.shift, cfg.shift, size=2)
        bg = _scene(scenes[int(rng.integers(0, len(scenes)))], rng)
        if people and not in_context and rng.random() < people:
            assert contexts is not None  # checked above
            # The context's face (half its side) lands exactly where the content goes: side s
            # at the same shift; the scene shows only where the context crop ends.
            other = contexts[int(rng.integers(0, len(contexts)))]
            bg = place(other, bg, s * 2, (float(dx), float(dy)))
        placed = place(np.ascontiguousarray(img), bg, s * wide, (float(dx), float(dy)))
        x = _light(placed, cfg, rng)
        out[i] = _optics(x, cfg, rng)
    return out
