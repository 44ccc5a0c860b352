"""A config field as a study axis: `study --sweep=FIELD=V1,V2,...`, and the kept shares.

What K measures: the paper keeps a majority sample when the sigmoid of its raw logit is at
least K = 0.99, so the share kept depends on how long and how hard round 1 trained, not only on
the features. Sweeping K (`rsrl.thresholds`), the quantile rule (`rsrl.drop_quantile`) or round
1's epochs (`train.first_round_epochs`), or any other config field, shows it.

Each swept value makes, of every method but `plain` that reads the field (`READERS`), a cell
`METHOD@FIELD=VALUE` (its runs in `noise_<n>/seed_<s>/METHOD@FIELD=VALUE/`); a method that
never reads it runs once, as without a sweep (K does not change confident learning: one cell,
not one per K); `plain` keeps the config's value and stays the reference every cell is
paired against (same seeds, same folds). A value is read as the
field's type; a number given for a tuple field (K: one per majority class) is repeated to the
tuple's length. The kept share of a majority class is pooled over the seed x fold units:
the sum of what the selections kept of it over the sum of its photos in D (`kept_shares`,
from the runs' `metrics.jsonl`: `class_counts` against D's supports).
"""

import ml_collections

from rsrl_jax import errors
from rsrl_jax.analysis.selection_report import selection_rows
from rsrl_jax.config import base_config
from rsrl_jax.experiments import compare

MARK = "@"  # METHOD@FIELD=VALUE: a swept cell's name and folder


def _rsrl_rule(m) -> bool:  # RSRL's keep rule: rsrl, and random_drop drawing at its counts
    return m.selection == "rsrl" or (m.selection == "random_drop" and m.random_drop_rule == "rsrl")


def _cl_rule(m) -> bool:  # confident learning's cross-fitting, and random_drop at its counts
    return m.selection == "confident_learning" or (
        m.selection == "random_drop" and m.random_drop_rule == "confident_learning"
    )


# The fields only some methods read: field -> whether a method's `config.method` section
# (compare.method_fields applied) reads it (`method/selection.py`, `method/losses.py`,
# `engine/cross_fit.py`). Every other field (train.*, data.*, model.*, rsrl.rounds, ...)
# shapes every method's runs.
READERS = {
    "rsrl.thresholds": _rsrl_rule,
    "rsrl.likelihood": _rsrl_rule,
    "rsrl.drop_quantile": _rsrl_rule,
    "rsrl.min_keep_per_class": _rsrl_rule,
    "rsrl.num_majority": lambda m: _rsrl_rule(m) or _cl_rule(m),  # the classes thinned
    "method.cl_folds": _cl_rule,
    "method.cl_epochs": _cl_rule,
    "method.cl_filter_by": _cl_rule,
    "method.random_drop_rule": lambda m: m.selection == "random_drop",
    "method.hardness_target": lambda m: m.selection == "hardness",
    "method.class_weights": lambda m: m.loss == "weighted_cross_entropy",
    "method.effective_number_beta": lambda m: (
        m.loss == "weighted_cross_entropy" and m.class_weights == "effective_number"
    ),
    "method.focal_gamma": lambda m: m.loss == "focal",
    "method.logit_adjustment_tau": lambda m: m.loss == "logit_adjusted",
}


def reads(config: ml_collections.ConfigDict, method: str, field: str) -> bool:
    """Whether the runs of `method` (a compare method name) read `field` (`READERS`; any
    other field: yes)."""
    rule = READERS.get(field)
    if rule is None:
        return True
    fields = compare.method_fields(method)
    section = ml_collections.ConfigDict(config.method.to_dict())
    section.update_from_flattened_dict(
        {k.removeprefix("method."): v for k, v in fields.items() if k.startswith("method.")}
    )
    return rule(section)


def split_values(text: str) -> list[str]:
    """'0.9,(0.9,0.8),0.99' -> ['0.9', '(0.9,0.8)', '0.99']: commas inside brackets stay."""
    out, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char in "([") - (char in ")]")
        if char == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    out.append(text[start:].strip())
    return out


def parse_value(config: ml_collections.ConfigDict, field: str, text: str):
    """`text` as a value of `config`'s `field` (its type; a number for a tuple repeats);
    ConfigError naming --sweep otherwise."""
    default = config[field]

    def bad(kind: str):
        return errors.ConfigError(f"--sweep: {field}={text!r} is not {kind}")

    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise bad("true or false")
        return text.lower() == "true"
    if isinstance(default, tuple | list):
        inner = text.strip("()[] ")
        try:
            items = tuple(float(v) for v in inner.split(",") if v.strip())
        except ValueError:
            raise bad("a number or a tuple of numbers") from None
        if len(items) == 1 and not text.strip().startswith(("(", "[")):
            items = items * max(len(default), 1)
        if default and all(isinstance(v, int) for v in default):
            if any(v != int(v) for v in items):
                raise bad("a tuple of integers")
            items = tuple(int(v) for v in items)
        return items
    for kind, words in ((int, "an integer"), (float, "a number")):
        if isinstance(default, kind):
            try:
                return kind(text)
            except ValueError:
                raise bad(words) from None
    return text


def parse(text: str | None, config: ml_collections.ConfigDict):
    """`--sweep` FIELD=V1,V2,... -> (field, [value texts]), or None for no sweep; a field the
    config lacks, no value, a repeated or mistyped value: ConfigError naming --sweep."""
    if not text:
        return None
    field, sep, values = text.partition("=")
    field = field.strip().removeprefix("config.")
    if not sep or not field:
        raise errors.ConfigError(
            f"--sweep={text!r}: give FIELD=V1,V2,... (e.g. --sweep=rsrl.drop_quantile=0.3,0.5)"
        )
    flat = config.to_dict()
    try:
        for part in field.split("."):
            flat = flat[part]
        if isinstance(flat, dict):
            raise KeyError(field)
    except (KeyError, TypeError):
        raise errors.ConfigError(
            f"--sweep: the config has no field {field!r} (a field such as rsrl.thresholds, "
            "rsrl.drop_quantile or train.first_round_epochs; python -m rsrl_jax.main "
            "--help lists them)"
        ) from None
    texts = [v for v in split_values(values) if v]
    if not texts:
        raise errors.ConfigError(f"--sweep: {field}: name at least one value")
    parsed = [parse_value(config, field, v) for v in texts]
    for i, value in enumerate(parsed):
        if value in parsed[:i]:
            raise errors.ConfigError(f"--sweep: {field}={texts[i]!r} is given twice")
    return field, texts


def cells(methods, sweep, reference: str = "plain", config=None) -> list[str]:
    """The study's cells: `methods` without a sweep; with one, `reference` as it is, every
    other method that reads the field (`reads` of `config`; None: the base config) at each
    swept value (`METHOD@FIELD=VALUE`), and the methods that do not read it once, as they
    are. ConfigError when no method but `reference` reads the field (a sweep of nothing)."""
    if sweep is None:
        return list(methods)
    field, texts = sweep
    config = base_config() if config is None else config
    others = [m for m in methods if m != reference]
    reading = [m for m in others if reads(config, m, field)]
    if others and not reading:
        raise errors.ConfigError(
            f"--sweep: none of --methods={','.join(methods)} reads {field} (it is read by "
            f"{', '.join(m for m in compare.PARTS if reads(config, m, field))}); add one of "
            "them or sweep another field"
        )
    out = [reference] if reference in methods else []
    for m in others:
        out += [f"{m}{MARK}{field}={v}" for v in texts] if m in reading else [m]
    return out


def base(cell: str) -> str:
    """The method of a cell: 'rsrl@rsrl.thresholds=0.9' -> 'rsrl'."""
    return cell.split(MARK, 1)[0]


def swept(cell: str) -> tuple[str, str] | None:
    """(field, value text) of a swept cell, None for a plain method."""
    if MARK not in cell:
        return None
    field, _, value = cell.split(MARK, 1)[1].partition("=")
    return field, value


def apply(config: ml_collections.ConfigDict, cell: str) -> ml_collections.ConfigDict:
    """`config` (a copy the caller owns) with the cell's swept field set."""
    setting = swept(cell)
    if setting is not None:
        field, text = setting
        config.update_from_flattened_dict({field: parse_value(config, field, text)})
    return config


def kept_shares(records_by_seed: dict, num_majority: int) -> dict:
    """{'round2': {score: share}, 'later': {score: share}}: per majority class, what the
    selections kept of it over its photos in D, summed over every seed x fold, for round 2
    (round 1's network's choice) and for every round >= 2; {} for a run of one round."""
    sums = {"round2": {}, "later": {}}
    for records in records_by_seed.values():
        for row in selection_rows(records, num_majority, 1):
            for score, kept, of in row["counts"]:
                for name in ("round2", "later") if row["round"] == 2 else ("later",):
                    k, n = sums[name].get(score, (0, 0))
                    sums[name][score] = (k + kept, n + of)
    return {
        name: {s: k / n for s, (k, n) in sorted(by.items(), key=lambda x: _order(x[0])) if n}
        for name, by in sums.items()
        if by
    }


def _order(score: str):
    return (0, float(score), "") if score.replace(".", "", 1).isdigit() else (1, 0.0, score)


def markdown(out: dict, key: str, reference: str = "plain") -> list[str]:
    """study.md's table for one noise level: each swept cell's kept share per majority class
    (round 2, and over rounds >= 2) and its macro F difference to `reference`."""
    sweep = out.get("sweep")
    if not sweep:
        return []
    rows = [(m, c) for m, c in out["noise"][key].items() if swept(m) is not None]
    found = {s for _, c in rows for s in (c.get("kept") or {}).get("round2", {})}
    scores = sorted(found, key=_order)
    applies = sorted({base(m) for m, _ in rows})
    once = [m for m in out.get("methods", {}) if swept(m) is None and m != reference]
    lines = [
        "",
        f"The sweep of `{sweep['field']}` applies to the methods that read it: "
        f"{', '.join(applies) or 'none'}"
        + (f"; {', '.join(once)} never read it and ran once" if once else "")
        + f"; {reference} keeps the config's value (the reference).",
        "",
        f"Kept share per majority class against `{sweep['field']}`: round 2 (the choice of "
        "round 1's network), and in parentheses every round >= 2; summed over seeds x folds "
        "(what the selections kept of the class over its photos in D).",
        "",
        f"| method | {sweep['field']} | "
        + " | ".join(f"score {s}" for s in scores)
        + f" | macro F − {reference} |",
        "| --- | --- | " + " | ".join("---" for _ in scores) + " | --- |",
    ]
    for method, cell in rows:
        kept = cell.get("kept") or {}
        shares = [
            _pct(kept.get("round2", {}).get(s)) + f" ({_pct(kept.get('later', {}).get(s))})"
            for s in scores
        ]
        diff = (cell.get("diff") or {}).get("macro_f1") or {}
        shown = "–" if diff.get("mean") is None else f"{diff['mean']:+.3f}"
        if diff.get("low") is not None:
            shown += f" [{diff['low']:+.3f}, {diff['high']:+.3f}]"
        lines.append(f"| {base(method)} | {swept(method)[1]} | {' | '.join(shares)} | {shown} |")
    return lines


def _pct(share) -> str:
    return "–" if share is None else f"{100 * share:.0f} %"
