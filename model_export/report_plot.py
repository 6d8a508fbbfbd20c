"""The fairness report's chart, recall_by_group.png: recall per skin group x gender for both
models, with intervals over faces (in-the-wild sets) or the spread over seeds (earlier sets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from model_export.crossfit import POOLED


def plot(
    agg: dict[str, Any],
    path: Path,
    names: dict[str, str],
    paired: dict[str, Any] | None = None,
    *,
    wider_name: str = "wider-demog",
    crossfit: dict[str, Any] | None = None,
) -> None:
    """Recall per skin group x gender, both models. With the in-the-wild sets: one panel per
    face fraction and the kiosk's range, error bars = 95 % bootstrap interval over the faces
    (seed means); without them, MIT and camera-shift with the spread over seeds. `wider_name`
    names the in-the-wild faces measured ("wider-demog half B" when half A was trained on).
    With the re-check (`crossfit`), a second row: the same panels on all of wider-demog, each
    face judged by models that never saw its photo."""
    import matplotlib

    from model_export.wider import HALVES

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: list[str] = [
        n
        for n in ("wider_kiosk", "wider_f050", "wider_f070", "wider_f090")
        if paired and n in paired
    ]
    sets = panels or ["mit6s191", "camera_shift"]
    pooled = crossfit[POOLED]["paired"] if crossfit and panels else None
    rows = 2 if pooled else 1
    fig, axes = plt.subplots(rows, len(sets), figsize=(5.2 * len(sets), 4.8 * rows), squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        b = agg["baseline"]["int8"][name]["groups"]
        d = agg["debiased"]["int8"][name]["groups"]
        keys = list(b)
        labels = [b[k]["label"] for k in keys]
        bars: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for folder, src in (("baseline", b), ("debiased", d)):
            means = np.array([src[k]["mean"] for k in keys])
            if panels and paired:
                side = "baseline" if folder == "baseline" else "other"
                cis = [paired[name]["bootstrap"]["groups"][lab][side]["ci95"] for lab in labels]
                err = np.abs(np.array(cis).T - means)
            else:
                err = np.array([src[k]["std"] for k in keys])
            bars[folder] = (means, err)
        counts = [b[k]["count"] for k in keys]
        title = _PLOT_TITLES.get(name, name).format(wider=wider_name)
        _bars(ax, labels, counts, bars, names=names, title=title)
        if pooled:
            groups = pooled[name]["bootstrap"]["groups"]
            both: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for folder, side in (("baseline", "baseline"), ("debiased", "other")):
                means = np.array([groups[lab][side]["value"] for lab in labels])
                cis = np.array([groups[lab][side]["ci95"] for lab in labels]).T
                both[folder] = (means, np.abs(cis - means))
            title = _PLOT_TITLES.get(name, name).format(wider="all of wider-demog")
            pooled_counts = [groups[lab]["count"] for lab in labels]
            _bars(axes[1][sets.index(name)], labels, pooled_counts, both, names=names, title=title)
    kind = "95 % interval over faces" if panels else "spread over seeds"
    measured = [h for h in HALVES if wider_name.endswith(f"half {h}")]
    held_out = f"; half {measured[0]}: photos no model trained on" if measured else ""
    if pooled:
        held_out += "; lower row: every face judged by the models that never saw its photo"
    fig.suptitle(
        f"Recall per group at 2 % false positives, int8, mean of seeds; bars: {kind}; "
        f"dashed: 0.85, the recall target{held_out}"
    )
    # One legend for the figure, below the panels: inside a panel it covered the bars' feet.
    handles, labels_ = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels_, loc="lower center", ncols=2, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.05 / rows, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _bars(
    ax: Any,
    labels: list[str],
    counts: list[int],
    bars: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    names: dict[str, str],
    title: str,
) -> None:
    """One panel: both models' recall per group (means [G], error bar lengths [2, G] or [G])."""
    x = np.arange(len(labels))
    for off, folder, color in ((-0.2, "baseline", "#E69F00"), (0.2, "debiased", "#56B4E9")):
        means, err = bars[folder]
        ax.bar(x + off, means, 0.4, yerr=err, color=color, label=names[folder], capsize=3)
    ax.set_xticks(x, [f"{lab}\n(n={c})" for lab, c in zip(labels, counts, strict=True)])
    ax.set_ylim(0, 1.05)
    ax.axhline(0.85, color="#999999", lw=0.8, ls="--")
    ax.set_ylabel("recall (faces found)")
    ax.set_title(title, fontsize=10)


_PLOT_TITLES = {
    "wider_kiosk": "{wider} at the kiosk's framing (0.5-0.71 m)",
    "wider_f050": "{wider}, face at 0.5 of the crop",
    "wider_f070": "{wider}, face at 0.7 of the crop",
    "wider_f090": "{wider}, face at 0.9 of the crop",
}


def wider_name(counts: dict[str, Any]) -> str:
    """How the plot names the in-the-wild faces: the other half alone when one half of the
    photos was trained on (half B when half A was)."""
    from model_export.wider import other_half

    if "wider_train" not in counts:
        return "wider-demog"
    return f"wider-demog half {other_half(counts['wider_train'].get('half', 'A'))}"
