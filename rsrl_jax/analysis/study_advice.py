"""What a study's evidence supports, in words a user can act on (study.md's last section).

One rule, so that no sentence recommends more than the intervals allow:

* the candidate is the method with the best validation macro F (mean over the seed x fold
  units of the round each unit chose): choosing it by its test figure would be the paper's
  optimistic protocol;
* it is recommended only when its paired test interval against `plain` lies above 0;
* otherwise the advice keeps `plain` and says why: the candidate does not beat plain
  detectably, or it is plain itself; methods whose interval lies below 0 are named as worse,
  those above 0 that validation did not pick are named as such, not recommended;
* when no interval excludes 0: "no method differs detectably from plain at this budget",
  the smallest difference it could detect, and how many more seeds would bring that to the
  study's target half-width (`study.TARGET_HALF_WIDTH`, at the observed sd).
"""

VERDICTS = ("use", "keep_reference", "no_difference", "no_comparison")


def validation_macro_f(cell: dict) -> float | None:
    """Mean validation macro F of a study cell's units (None without any)."""
    values = [u["val_macro_f1"] for u in cell["units"] if u.get("val_macro_f1") is not None]
    return sum(values) / len(values) if values else None


def _interval(d: dict) -> str:
    return f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"


def advise(cells: dict, seeds: int, reference: str = "plain", target: float = 0.01) -> dict:
    """{verdict (one of VERDICTS), method (the one recommended or the validation candidate,
    or None), words}: the advice for one noise level's `cells` ({method: cell} as
    `study.summarize` makes them: `units` with `val_macro_f1`, `diff` to `reference` with
    macro_f1's paired interval and power). `seeds`: the seeds the study ran."""
    scored = {m: validation_macro_f(c) for m, c in cells.items()}
    scored = {m: v for m, v in scored.items() if v is not None}
    diffs = {
        m: c["diff"]["macro_f1"]
        for m, c in cells.items()
        if c.get("diff") is not None and c["diff"]["macro_f1"]["low"] is not None
    }
    if reference not in cells or not diffs or not scored:
        return {
            "verdict": "no_comparison",
            "method": None,
            "words": f"No paired interval against `{reference}`: add {reference} to --methods "
            "and run at least two seed x fold units to get advice.",
        }
    best = max(scored, key=lambda m: (scored[m], m == reference))
    on_val = f"the best method on validation (macro F {scored[best]:.3f})"
    if best != reference and best in diffs and diffs[best]["low"] > 0:
        d = diffs[best]
        return {
            "verdict": "use",
            "method": best,
            "words": f"Use **{best}**: {on_val}, and on test it beats `{reference}` by "
            f"{_interval(d)} macro F (95 % interval over n = {d['n']} paired units).",
        }
    higher = [m for m, d in diffs.items() if d["low"] > 0]
    lower = [m for m, d in diffs.items() if d["high"] < 0]
    if not higher and not lower:
        words = _no_difference(diffs, seeds, reference, target)
        return {"verdict": "no_difference", "method": None, "words": words}
    if best == reference:
        words = f"Keep **{reference}**: it is {on_val}."
    else:
        words = (
            f"Keep **{reference}**: {best} is {on_val}, but on test it does not beat "
            f"`{reference}` detectably ({_interval(diffs[best])} macro F)."
        )
    if higher:
        words += (
            " Higher than plain on test but not chosen on validation (choosing them by test "
            "would be the paper's optimistic protocol): "
            + ", ".join(f"{m} {_interval(diffs[m])}" for m in higher)
            + "."
        )
    if lower:
        words += (
            " Detectably lower than plain: "
            + ", ".join(f"{m} {_interval(diffs[m])}" for m in lower)
            + "."
        )
    return {"verdict": "keep_reference", "method": best, "words": words}


def _no_difference(diffs: dict, seeds: int, reference: str, target: float) -> str:
    """'No method differs detectably ...', the half-width, and the seeds a `target` needs."""
    widest = max(diffs.values(), key=lambda d: d["half_width"])
    words = (
        f"No method differs detectably from `{reference}` at this budget: every 95 % interval "
        f"includes 0 (the smallest detectable difference is ±{widest['half_width']:.3f} macro F "
        f"or less, over n = {widest['n']} paired units)."
    )
    needed = [d["seeds_needed"] for d in diffs.values() if d.get("seeds_needed")]
    if widest["half_width"] <= target:
        return words + f" Any difference is below about ±{target:g} macro F."
    if needed:
        more = max(max(needed) - seeds, 1)
        words += (
            f" {more} more seeds ({seeds + more} in all) would bring the smallest detectable "
            f"difference to ±{target:g} macro F, at the observed spread."
        )
    return words
