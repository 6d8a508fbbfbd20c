"""The fairness report in words: report.md and the cards' one-line status, from the numbers
`model_export.report` computed (nothing is measured here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_export.crossfit import table as crossfit_table
from model_export.sets import OOD_SETS


def _recheck_note(tg: dict[str, Any]) -> str:
    """The cross-fit re-check's verdict on all of wider-demog, when the report has one."""
    wt, pooled = tg.get("wider", {}), tg.get("crossfit_pooled")
    if pooled is None:  # set together with wt["debiased_holds_measured_half"]
        return ""
    met = {True: "met", False: "NOT met"}
    return (
        " all of wider-demog, each face judged by models that never saw its photo (cross-fit "
        f"re-check, {pooled['faces']} faces): baseline gap real "
        f"({met[bool(pooled['baseline_gap_real_everywhere'])]}), debiasing targets "
        f"({met[bool(wt['debiased_holds'])]}: the screen's label follows this);"
    )


def status_line(tg: dict[str, Any], n_seeds: int) -> str:
    """One factual sentence per out-of-distribution set for the shipped cards: the seed shipped
    and each model-export target, met or not, from the report's own numbers."""

    def ok(flag: bool) -> str:
        return "met" if flag else "NOT met"

    parts = [f"seed 0 of {n_seeds} shipped; targets on {n_seeds}-seed int8 means:"]
    for name in OOD_SETS:
        t = tg[name]
        parts.append(
            f"{name}: worst group {t['worst_group_gain'] * 100:+.1f} points "
            f"(+5: {ok(t['worst_group_gain_ok'])}), gap {-t['gap_reduction'] * 100:+.0f} % "
            f"(-30 %: {ok(t['gap_reduction_ok'])}), overall not lower "
            f"({ok(t['overall_not_lower'])});"
        )
    wt = tg.get("wider")
    if wt:
        pooled = tg.get("crossfit_pooled")
        where = "wider-demog" if pooled is None else "wider-demog, the half no seed trained on"
        parts.append(
            f"{where} (in-the-wild faces, f = 0.5/0.7/0.9): recall >= 0.85 in every group "
            f"({ok(wt['recall_085_everywhere'])}), baseline gap real "
            f"({ok(wt['baseline_gap_real_everywhere'])}), debiasing targets "
            f"({ok(wt.get('debiased_holds_measured_half', wt['debiased_holds']))});"
            + _recheck_note(tg)
        )
    drift = tg.get("int8_max_drift")
    if drift is not None:
        by_set = tg.get("int8_max_drift_by_set") or {}
        detail = ", ".join(f"{k} {v * 100:.1f}" for k, v in by_set.items())
        parts.append(
            f"int8 vs float per group: largest difference {drift * 100:.1f} points "
            f"(1.5: {ok(tg['int8_within_1_5_points'])})"
            + (f"; by set: {detail}" if detail else "")
            + ". See report/."
        )
    return " ".join(parts)


def write_markdown(
    agg: dict[str, Any],
    tg: dict[str, Any],
    n_seeds: int,
    path: Path,
    names: dict[str, str],
    *,
    effects: dict[str, Any] | None = None,
    paired: dict[str, Any] | None = None,
    halves: dict[str, Any] | None = None,
    crossfit: dict[str, Any] | None = None,
    thresholds: str = "2 % of validation non-faces",
) -> None:
    lines = [
        "# Fairness report",
        "",
        f"{n_seeds} training seeds; int8 models as the kiosk runs them; thresholds at equal FPR "
        f"({thresholds}). Recall mean ± standard deviation over seeds (how much "
        "training varies, not a margin of error: intervals over faces are in the paired "
        "sections below).",
        "",
    ]
    for name in agg["baseline"]["int8"]:
        head = f"| group | n | {names['baseline']} | {names['debiased']} |"
        lines += [f"## {name}", "", head, "|---|---|---|---|"]
        b, d = agg["baseline"]["int8"][name], agg["debiased"]["int8"][name]
        for key, g in b["groups"].items():
            dg = d["groups"][key]
            lines.append(
                f"| {g['label']} | {g['count']} | {g['mean']:.3f} ± {g['std']:.3f} | "
                f"{dg['mean']:.3f} ± {dg['std']:.3f} |"
            )
        for key, g in b.get("coarse_groups", {}).items():
            dg = d["coarse_groups"][key]
            lines.append(
                f"| {g['label']} | {g['count']} | {g['mean']:.3f} ± {g['std']:.3f} | "
                f"{dg['mean']:.3f} ± {dg['std']:.3f} |"
            )
        lines.append(
            f"| **overall** | | {b['recall_mean']:.3f} ± {b['recall_std']:.3f} | "
            f"{d['recall_mean']:.3f} ± {d['recall_std']:.3f} |"
        )
        lines.append(f"| **worst group** | | {b['worst_mean']:.3f} | {d['worst_mean']:.3f} |")
        lines.append(f"| **gap** | | {b['gap_mean']:.3f} | {d['gap_mean']:.3f} |")
        (bn, bp), (dn, dp) = b["gap_noise_floor"], d["gap_noise_floor"]
        lines.append(
            f"| gap from sampling noise alone (mean / 95 %) | | {bn:.3f} / {bp:.3f} | "
            f"{dn:.3f} / {dp:.3f} |"
        )
        lines.append("")
    if effects:
        lines += [
            f"## Effect per seed, {names['debiased']} minus {names['baseline']} (int8)",
            "",
            "Mean of the per-seed differences in points, 95 % t interval over seeds, and "
            "in how many seeds the right-hand model was better. The interval covers training "
            "variation only; the test faces are the same for every seed.",
            "",
            "| set | worst group | gap | overall recall |",
            "|---|---|---|---|",
        ]
        for name, e in effects.items():
            cells = []
            for key in ("worst", "gap", "overall"):
                v = e[key]
                lo, hi = v["ci95"]
                cells.append(
                    f"{v['mean'] * 100:+.1f} [{lo * 100:+.1f}, {hi * 100:+.1f}], "
                    f"{v['seeds_better']} of {len(v['per_seed'])}"
                )
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if paired:
        lines += paired_markdown(paired, names)
    if halves:
        lines += halves_markdown(halves, names)
    if crossfit:
        lines += [
            "## Re-check on all of wider-demog: the recipe trained on the other half",
            "",
            "The same recipe trained on the other half of the photos judges the half these runs "
            "trained on; seed k of both is one seed of the recipe, and every face is judged by "
            "models that never saw its photo (model_export.crossfit). The rule, written before "
            "the first re-check ran: the debiasing targets must hold on both halves pooled at "
            "each target fraction, and the gap change must be negative on half A alone. "
            f"It {'holds' if crossfit['holds'] else 'does not hold'}, so the right-hand model "
            f"is {'' if crossfit['holds'] else 'not '}called debiased.",
            "",
            *crossfit_table(crossfit, names),
            "",
        ]
    lines += [
        "## Targets (out-of-distribution sets, int8 means)",
        "",
        "```",
        json.dumps(tg, indent=2),
        "```",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def _ci(v: dict[str, Any], scale: float = 100.0, sign: str = "+") -> str:
    lo, hi = v["ci95"]
    f = f"{sign}.1f"
    return f"{v['value'] * scale:{f}} [{lo * scale:{f}}, {hi * scale:{f}}]"


def paired_markdown(paired: dict[str, Any], names: dict[str, str]) -> list[str]:
    """The in-the-wild comparison: per group with bootstrap intervals over faces, the fixed-pair
    gap and its change, and McNemar per seed."""
    b, d = names["baseline"], names["debiased"]
    lines = [
        f"## In-the-wild faces (wider-demog): {d} vs {b}, paired",
        "",
        "Recall in % as the mean over training seeds, each face counted as found in the share "
        "of seeds that find it; 95 % intervals from 2,000 bootstrap draws of the faces within "
        "each group (the same draw for both models). The gap is between the two groups that "
        "are best and worst for the baseline on all faces (a fixed pair, so its interval can "
        "include zero). McNemar: faces only one model finds, per seed, exact two-sided p.",
        "",
    ]
    for name, res in paired.items():
        bt = res["bootstrap"]
        gg = bt["gap_groups"]
        lines += [
            f"### {name} ({bt['faces']} faces, {bt['seeds']} seeds)",
            "",
            f"| group | n | {b} | {d} | change (points) |",
            "|---|---|---|---|---|",
        ]
        for label, g in bt["groups"].items():
            lines.append(
                f"| {label} | {g['count']} | {_ci(g['baseline'], sign='')} | "
                f"{_ci(g['other'], sign='')} | {_ci(g['change'])} |"
            )
        for key, title in (("worst", "worst group"), ("overall", "overall")):
            v = bt[key]
            lines.append(
                f"| **{title}** | | {_ci(v['baseline'], sign='')} | {_ci(v['other'], sign='')} | "
                f"{_ci(v['change'])} |"
            )
        v = bt["gap"]
        lines.append(
            f"| **gap {gg['best']} - {gg['worst']}** | | {_ci(v['baseline'])} | "
            f"{_ci(v['other'])} | {_ci(v['change'])} |"
        )
        mc = "; ".join(
            f"seed {i}: {m['only_a']} only {b}, {m['only_b']} only {d}, p = {m['p_value']:.3g}"
            for i, m in enumerate(res["mcnemar"])
        )
        lines += ["", f"McNemar: {mc}.", ""]
    return lines


def halves_markdown(halves: dict[str, Any], names: dict[str, str]) -> list[str]:
    """Each claim on two halves of the photos: does it hold on faces it was not measured on?"""
    lines = [
        "## Re-check on two halves of the in-the-wild photos",
        "",
        "The same paired comparison on each half of wider-demog, split by source photo: a claim "
        "that holds on the whole set should hold on each half (with wider intervals).",
        "",
        f"| set | half | faces | gap {names['baseline']} | gap change | worst-group change | "
        "overall change |",
        "|---|---|---|---|---|---|---|",
    ]
    for half, sets in halves.items():
        for name, r in sets.items():
            lines.append(
                f"| {name} | {half} | {r['faces']} | {_ci(r['gap']['baseline'])} | "
                f"{_ci(r['gap']['change'])} | {_ci(r['worst']['change'])} | "
                f"{_ci(r['overall']['change'])} |"
            )
    lines.append("")
    return lines
