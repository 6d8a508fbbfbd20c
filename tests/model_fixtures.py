"""A tiny faces64-format dataset written by the tests (never the real training data outside
the repository)."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from tests.tiny_bundles import synthetic_set

RACES = ("White", "Black", "Asian", "Indian", "Others")
HEADER = (
    "path,is_face,split,gender,race,skin_tone,age,crop,source,"
    "source_repo,source_path,source_commit,license"
)


def write_faces64(root: Path, faces_per_race: int = 24, nonfaces: int = 120, seed: int = 0) -> Path:
    """Train faces per race x gender, non-faces with 2 crops per source photo, and both eval
    sets (utkface race x gender, mit6s191 skin tone x gender)."""
    rng = np.random.default_rng(seed)
    rows: list[list[str]] = []

    def save(rel: str, img: np.ndarray) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor((img * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))

    n_faces = faces_per_race * len(RACES) * 2
    x, y, _ = synthetic_set(2 * (n_faces + nonfaces + 200), seed)
    faces, others = x[y == 1], x[y == 0]
    fi = 0
    for race in RACES:
        for gender in ("Female", "Male"):
            for k in range(faces_per_race):
                rel = f"train/faces/utk_{race}_{gender}_{k}.jpg"
                save(rel, faces[fi])
                fi += 1
                rows.append(
                    [
                        rel,
                        "1",
                        "train",
                        gender,
                        race,
                        "",
                        "30",
                        "center",
                        "UTKFace",
                        "r",
                        rel,
                        "c",
                        "nc",
                    ]
                )
    for k in range(nonfaces):
        src = f"caltech/img_{k // 2}.jpg"  # two crops per source photo
        rel = f"train/nonfaces/caltech_{k}.jpg"
        save(rel, others[k])
        rows.append([rel, "0", "train", "", "", "", "", "random", "Caltech", "r", src, "c", "cc"])
    for race in RACES:
        for gender in ("Female", "Male"):
            for k in range(4):
                rel = f"eval/utkface/{race}_{gender}_{k}.jpg"
                save(rel, faces[fi])
                fi += 1
                rows.append(
                    [
                        rel,
                        "1",
                        "eval",
                        gender,
                        race,
                        "",
                        "30",
                        "center",
                        "UTKFace",
                        "r",
                        rel,
                        "c",
                        "nc",
                    ]
                )
    for tone in ("Darker", "Lighter"):
        for gender in ("Female", "Male"):
            for k in range(5):
                rel = f"eval/mit6s191/{tone[0]}{gender[0]}_{k}.jpg"
                save(rel, faces[fi] * (0.6 if tone == "Darker" else 1.0))
                fi += 1
                rows.append(
                    [rel, "1", "eval", gender, "", tone, "", "none", "MIT", "r", "h5", "c", "mit"]
                )
    rng.shuffle(rows)
    with (root / "labels.csv").open("w", newline="") as fh:
        fh.write(HEADER + "\n")
        csv.writer(fh).writerows(rows)
    return root


def write_recipe(path: Path, per_race: int = 8, white: int = 24, nonfaces: int = 60) -> Path:
    faces = {r: (white if r == "White" else per_race) for r in RACES}
    path.write_text(
        "name: tiny-skewed\ngroup_by: race\n"
        f"faces: {faces}\nnonfaces: {nonfaces}\nseed: 1\n".replace("'", "")
    )
    return path


WIDER_HEADER = "path,event,image,face,skin,skin_group,gender,age,face_fraction"
SKIN = {"Lighter": ("I", "II", "III"), "Darker": ("IV", "V", "VI")}


def write_wider(root: Path, per_cell: int = 6, seed: int = 0) -> Path:
    """A wider-demog-format folder: 128x128 crops with a synthetic face at half the side (face
    fraction 0.5) on a non-face background, per skin group x gender."""
    x, y, _ = synthetic_set(8 * per_cell * 4, seed)
    faces, scenes = x[y == 1], x[y == 0]
    rows: list[list[str]] = []
    k = 0
    for group, types in SKIN.items():
        for gender in ("Female", "Male"):
            for i in range(per_cell):
                crop = cv2.resize(scenes[k % len(scenes)], (128, 128))
                crop[32:96, 32:96] = faces[k] * (0.6 if group == "Darker" else 1.0)
                rel = f"0--Parade/img_{k}_f1.jpg"
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                u8 = (np.clip(crop, 0, 1) * 255).astype(np.uint8)
                cv2.imwrite(str(path), cv2.cvtColor(u8, cv2.COLOR_RGB2BGR))
                skin = types[i % 3]
                rows.append(
                    [rel, "0--Parade", f"img_{k}.jpg", "1", skin, group, gender, "Adult", "0.5"]
                )
                k += 1
    with (root / "labels.csv").open("w", newline="") as fh:
        fh.write(WIDER_HEADER + "\n")
        csv.writer(fh).writerows(rows)
    return root
