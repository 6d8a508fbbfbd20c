"""The demo clip: generated on first use, so `make demo` needs no camera and no download.

Built only from images scikit-image ships inside its wheel (`skimage.data`, loaded offline):
- `astronaut`: Eileen Collins, NASA portrait (NASA Great Images), public domain;
- `brick`: brick wall texture from CC0Textures, CC0;
- `coffee`: a cup of coffee, courtesy of Pikolo Espresso Bar, CC0 (photo: Rachel Michetti).

Script, 640x480 at 30 fps, 24 s (720 frames), mp4v:
   0-4 s   the empty room: nobody in the guide box, so the kiosk shows its attract screen;
   4-6 s   a visitor (head and shoulders) slides in from the right into the guide box;
   6-14 s  stays there with small head movements (sway, nod, tilt, lean) while the light
           changes (dimmer, a warm side light, back to normal);
  14-16 s  leaves to the left;
  17-23 s  a coffee cup is held up into the box (an object that is not a face), then lowered.

Deterministic: the same bytes on every run with the same OpenCV build. The file carries a
sha256 sidecar; a missing, truncated or altered clip is generated again (to a temp file, then
renamed, so a kiosk never reads a half-written clip).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from installation import paths
from installation.files import sha256_file

logger = logging.getLogger(__name__)

W, H, FPS, SECONDS = 640, 480, 30, 24
FRAMES = FPS * SECONDS
VERSION = 2  # bump when the script changes, so cached clips are rebuilt
SIDE = 256  # the default guide box's square at 640x480: x 192..448, y 88..344
BOX_CX, BOX_CY = W / 2, 88 + SIDE / 2
# astronaut.png (512x512): the Haar face box is (177, 66, 95, 95); its centre, a little low
# so that forehead and chin both sit inside the square like in the 64x64 training crops.
FACE_CX, FACE_CY = 224.0, 118.0
FACE_SCALE = 2.0  # the 95 px face becomes ~190 px: about 3/4 of the 256 px square

_lock = threading.Lock()


@dataclass(frozen=True)
class _Assets:
    room: np.ndarray  # [H, W, 3] float32 BGR, the empty scene
    person: np.ndarray  # [512, 512, 3] float32 BGR astronaut
    person_alpha: np.ndarray  # [512, 512] float32 in [0, 1]: head and shoulders
    cup: np.ndarray  # [220, 220, 3] float32 BGR
    cup_alpha: np.ndarray  # [220, 220] float32
    noise: list[np.ndarray]  # seeded sensor noise, [H, W, 3] float32 each, cycled


def demo_clip_path(cache: Path | None = None) -> Path:
    """The demo clip, generated into the cache folder at first use (a few seconds)."""
    path = (cache or paths.cache_dir()) / f"demo-v{VERSION}-{W}x{H}.mp4"
    with _lock:
        if not _intact(path):
            logger.info("generating the demo clip %s (first run only)", path)
            write_demo_clip(path)
    return path


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _intact(path: Path) -> bool:
    try:
        expected = _sidecar(path).read_text(encoding="ascii").strip()
        return path.is_file() and sha256_file(path) == expected
    except OSError:
        return False


def _soft_ellipses(
    shape: tuple[int, int], ellipses: list[tuple[tuple[int, int], tuple[int, int]]], blur: float
) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for center, axes in ellipses:
        cv2.ellipse(mask, center, axes, 0, 0, 360, 255, -1)
    return cv2.GaussianBlur(mask, (0, 0), blur).astype(np.float32) / 255.0


def _assets() -> _Assets:
    from skimage import data  # only the generator needs scikit-image

    brick = cv2.resize(data.brick(), (W, H), interpolation=cv2.INTER_AREA)
    # A dim, warm museum wall behind the visitor, a little brighter in the middle.
    wall = cv2.GaussianBlur(brick, (0, 0), 1.5).astype(np.float32) * 0.4 + 35
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    vignette = 1.1 - 0.35 * (((xx - W / 2) / W) ** 2 + ((yy - H / 2) / H) ** 2) * 2
    room = np.stack([wall * 0.78, wall * 0.9, wall * 1.05], axis=-1) * vignette[..., None]

    person = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR).astype(np.float32)
    person_alpha = _soft_ellipses(
        (512, 512), [((226, 100), (80, 100)), ((226, 205), (40, 60)), ((205, 420), (195, 175))], 5
    )
    coffee = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)[20:380, 120:480]
    cup = cv2.resize(coffee, (220, 220), interpolation=cv2.INTER_AREA).astype(np.float32)
    cup_alpha = _soft_ellipses((220, 220), [((110, 110), (104, 104))], 3)

    rng = np.random.default_rng(6191)
    noise = [rng.normal(0, 2.5, size=(H, W, 3)).astype(np.float32) for _ in range(12)]
    return _Assets(room.astype(np.float32), person, person_alpha, cup, cup_alpha, noise)


def _ease(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


def _composite(frame: np.ndarray, img: np.ndarray, alpha: np.ndarray, m: np.ndarray) -> None:
    """Warp `img` (and its alpha) by the 2x3 affine `m` into `frame` [H, W, 3] float32, in place.

    Only the window the sprite covers is warped and blended (a few ms per frame matter: 720 of
    them are rendered at first run).
    """
    h, w = alpha.shape
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], dtype=np.float64) @ m.T
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if x1 <= x0 or y1 <= y0:
        return
    mw = m.astype(np.float64)
    mw[:, 2] -= np.array([x0, y0], dtype=np.float64)  # the window's origin becomes (0, 0)
    size = (int(x1 - x0), int(y1 - y0))
    a = cv2.warpAffine(alpha, mw, size, flags=cv2.INTER_LINEAR, borderValue=0.0)[..., None]
    patch = cv2.warpAffine(img, mw, size, flags=cv2.INTER_LINEAR)
    win = frame[y0:y1, x0:x1]
    win += (patch - win) * a  # = win * (1 - a) + patch * a, one temporary fewer


def _person_pose(t: float) -> tuple[float, float, float, float] | None:
    """(face centre x, y, scale, tilt degrees) in frame pixels, or None when nobody is there."""
    if not 4.0 <= t < 16.0:
        return None
    if t < 6.0:  # slide in from the right
        cx = BOX_CX + (W * 0.85) * (1 - _ease((t - 4.0) / 2.0))
    elif t < 14.0:  # in the box: small, slow head movements
        cx = BOX_CX + 10 * math.sin(2 * math.pi * 0.35 * (t - 6.0))
    else:  # leave to the left
        cx = BOX_CX - (W * 0.85) * _ease((t - 14.0) / 2.0)
    cy = BOX_CY + 6 * math.sin(2 * math.pi * 0.27 * t)
    scale = FACE_SCALE * (1 + 0.03 * math.sin(2 * math.pi * 0.2 * t))
    tilt = 3.0 * math.sin(2 * math.pi * 0.23 * t)
    return cx, cy, scale, tilt


def _lighting(t: float) -> tuple[float, tuple[float, float, float], float]:
    """(gain, BGR tint, left-to-right light slope): normal, dimmer, warm side light, normal."""
    dim = 0.4 * math.sin(math.pi * _ease((t - 8.0) / 2.0)) if 8.0 <= t < 10.0 else 0.0
    warm = math.sin(math.pi * min(max((t - 10.0) / 3.0, 0.0), 1.0))
    tint = (1.0 - 0.18 * warm, 1.0, 1.0 + 0.15 * warm)
    return 1.0 - dim, tint, 0.35 * warm


def render_frame(i: int, assets: _Assets) -> np.ndarray:
    """Frame `i` of the script, BGR uint8 [H, W, 3]."""
    t = i / FPS
    frame: npt.NDArray[np.float32] = assets.room.copy()
    pose = _person_pose(t)
    if pose is not None:
        cx, cy, scale, tilt = pose
        m = cv2.getRotationMatrix2D((FACE_CX, FACE_CY), tilt, scale)
        m[:, 2] += np.array([cx - FACE_CX, cy - FACE_CY])  # the face centre lands on (cx, cy)
        _composite(frame, assets.person, assets.person_alpha, m)
    if 17.0 <= t < 23.0:  # the cup rises into the box, wobbles, and is lowered again
        up = _ease((t - 17.0) / 1.5) - _ease((t - 21.5) / 1.5)
        cx = BOX_CX + 6 * math.sin(2 * math.pi * 0.5 * t)
        cy = H + 130 - (H + 130 - BOX_CY) * up
        m = np.array([[1, 0, cx - 110], [0, 1, cy - 110]], dtype=np.float64)
        _composite(frame, assets.cup, assets.cup_alpha, m)
    gain, tint, slope = _lighting(t)
    # One [1, W, 3] factor: gain x colour tint x a left-to-right ramp (brighter on the left).
    ramp = 1.0 + slope * (0.5 - np.arange(W, dtype=np.float32) / W)
    light = (gain * ramp[:, None] * np.asarray(tint, np.float32)[None, :])[None]
    frame *= light
    frame += assets.noise[i % len(assets.noise)]
    np.clip(frame, 0, 255, out=frame)
    return frame.astype(np.uint8)


def _remove_stale(folder: Path, keep: Path) -> None:
    """Old script versions and temp files of an interrupted run (older than 10 minutes)."""
    now = time.time()
    for old in folder.glob("demo-v*-*.mp4*"):
        if old.name not in (keep.name, _sidecar(keep).name):
            old.unlink(missing_ok=True)
    for tmp in folder.glob(".demo-*"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > 600:
                tmp.unlink()


def write_demo_clip(path: Path, frames: int = FRAMES) -> None:
    """Render the script to `path` (mp4v) with a sha256 sidecar; atomic on the same filesystem."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path.parent, path)
    assets = _assets()
    fd, tmp_name = tempfile.mkstemp(suffix=".mp4", prefix=".demo-", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (W, H))
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write mp4v video to {path.parent}")
        for i in range(frames):
            writer.write(render_frame(i, assets))
        writer.release()
        digest = sha256_file(tmp)
        os.replace(tmp, path)
        # Its own temporary name too: two processes that generate at once (a replay started
        # beside the kiosk) must not rename each other's file away.
        fd, sidecar_name = tempfile.mkstemp(suffix=".tmp", prefix=".demo-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(digest + "\n")
        os.replace(sidecar_name, _sidecar(path))
    finally:
        tmp.unlink(missing_ok=True)
