"""Where each side of `--whole_run` spent its wall time, from what the side writes.

Ours (`split_ours`): the run's log lines' timestamps (the first line, the data, each round's
last epoch and its end, the chosen round, the highlight panel, "done"), its timings.jsonl
(each round's training, evaluation and checkpoint seconds) and JAX's own log of every trace,
lowering and compile with its seconds (JAX_LOG_COMPILES=1 in the run's environment).
The PyTorch loop's (`split_torch`): its own stamps and seconds (`bench.torch_loop`).
"""

import datetime
import json
import re
import time

from benchmarks import run_timing
from rsrl_jax import workdir_files

# Our split's parts, in the order printed; other_s is the rest of the wall time.
OUR_PARTS = (
    "imports_s",
    "setup_s",
    "compile_s",
    "training_s",
    "likelihood_passes_s",
    "evaluation_s",
    "checkpoints_s",
    "reporting_s",
    "exit_s",
    "other_s",
)
TORCH_PARTS = (
    "imports_s",
    "setup_s",
    "training_s",
    "likelihood_passes_s",
    "evaluation_s",
    "checkpoints_s",
    "exit_s",
    "other_s",
)


# An absl log line: level, MMDD, HH:MM:SS.micro, thread, file:line] message.
ABSL_LINE = re.compile(r"^[IWEF](\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6}) +\d+ [^\]]*\] (.*)$")
COMPILE_LINE = re.compile(
    r"Finished (?:tracing (\S+) for jit|jaxpr to MLIR module conversion (\S+)"
    r"|XLA compilation of (\S+)) in ([0-9.]+) sec"
)
COMPILE_KINDS = ("trace", "lower", "compile")  # COMPILE_LINE's groups, in order
MARKS = {  # the run's own log lines that bound the parts of its time
    "data": re.compile(r"data \S+: \d+ photos"),
    "fold": re.compile(r"fold \d+: \|D\|="),
    "initial": re.compile(r"initial weights: "),
    "round": re.compile(r"fold \d+ round (\d+)/\d+: trained on"),
    "chosen": re.compile(r"fold \d+: chosen round"),
    "highlight": re.compile(r"fold \d+: highlight panel|highlight panels skipped"),
    "done": re.compile(r"done in \d+s"),
}


def log_lines(text: str, year: int) -> list[tuple[float, str]]:
    """(time.time() stamp, message) of each absl line of a log written in `year`."""
    lines = []
    for line in text.splitlines():
        m = ABSL_LINE.match(line)
        if m:
            month, day, hour, minute, second, micro = (int(g) for g in m.groups()[:6])
            when = datetime.datetime(year, month, day, hour, minute, second, micro)
            lines.append((when.timestamp(), m.group(7)))
    return lines


def compile_events(lines) -> list[tuple[float, str, str, float]]:
    """(end stamp, function, 'trace' | 'lower' | 'compile', seconds) of each trace, lowering
    and XLA compile (or persistent-cache read) JAX logged."""
    events = []
    for when, message in lines:
        m = COMPILE_LINE.match(message)
        if m:
            kind, name = next((k, g) for k, g in zip(COMPILE_KINDS, m.groups(), strict=False) if g)
            if name.startswith("jit(") and name.endswith(")"):
                name = name[4:-1]
            events.append((when, name, kind, float(m.group(4))))
    return events


def marks(lines) -> dict:
    """The stamps of the run's marking lines (`MARKS`; the last of each), with `first` (the
    first line) and `round` ({r: stamp of round r's end line})."""
    found = {"first": lines[0][0] if lines else None, "round": {}}
    for when, message in lines:
        for name, pattern in MARKS.items():
            m = pattern.match(message)
            if m and name == "round":
                found["round"][int(m.group(1))] = when
            elif m:
                found[name] = when
    return found


def split_ours(process: dict, log_text: str, workdir: str) -> dict:
    """Our wall time split into `OUR_PARTS` (seconds; they add up to the wall time), with
    the details they come from.

    Windows from the log's stamps: imports (process start to the first log line), setup (to
    the line of round 1's initial weights: data, network, steps, initial weights), each
    round's training and evaluation passes (timings.jsonl's seconds, from the round's start:
    that line, or the end line of the round before) and checkpoint (its seconds, before the
    round's end line), reporting (the last round's end to "done": summary, highlight panel,
    report), exit ("done" to the process's end). Each compile JAX logged is taken out of the
    window its end falls in and counted in compile_s; the forward passes are split into
    likelihood passes over D and evaluation by `run_timing.forward_split`. other_s is the
    rest: between rounds (metrics, selection, the next round's set-up).
    """
    timings = run_timing.read_jsonl(workdir_files.WorkdirFiles(workdir).timings)
    records = run_timing.read_jsonl(workdir_files.WorkdirFiles(workdir).metrics)
    lines = log_lines(log_text, time.localtime(process["start"]).tm_year)
    at = marks(lines)
    # Round 1 trains once its initial weights are made; round r > 1 once round r - 1 ended.
    at["round"][0] = at.get("initial", at.get("fold"))
    windows = {"imports": (process["start"], at["first"]), "setup": (at["first"], at["round"][0])}
    for t in timings:
        r = t["round"]
        train_end = at["round"][r - 1] + t["train_s"]
        windows[f"train{r}"] = (at["round"][r - 1], train_end)
        windows[f"eval{r}"] = (train_end, train_end + t["eval_s"])
        windows[f"checkpoint{r}"] = (at["round"][r] - t["checkpoint_s"], at["round"][r])
    at["last_round"] = at["round"][max(at["round"])]
    done = at.get("done", process["end"])
    windows["reporting"] = (at["last_round"], done)
    windows["exit"] = (done, process["end"])  # the interpreter's teardown
    compiles = compile_events(lines)
    inside = dict.fromkeys(windows, 0.0)
    for when, _, _, seconds in compiles:
        for name, (begin, end) in windows.items():
            if begin <= when <= end:
                inside[name] += seconds
                break

    def net(prefix: str) -> float:  # a kind's seconds less the compiles inside them
        return sum(
            max(e - b - inside[n], 0.0) for n, (b, e) in windows.items() if n.startswith(prefix)
        )

    forward = sum(max(t["eval_s"] - inside[f"eval{t['round']}"], 0.0) for t in timings)
    likelihood_s, evaluation_s = run_timing.forward_split(forward, records)
    split = {
        "imports_s": net("imports"),
        "setup_s": net("setup"),
        "compile_s": sum(event[-1] for event in compiles),
        "training_s": net("train"),
        "likelihood_passes_s": likelihood_s,
        "evaluation_s": evaluation_s,
        "checkpoints_s": net("checkpoint"),
        "reporting_s": net("reporting"),
        "exit_s": net("exit"),
    }
    split["other_s"] = process["wall_s"] - sum(split.values())
    by_function: dict[str, dict] = {}
    for _, name, kind, seconds in compiles:
        entry = by_function.setdefault(name, {"seconds": 0.0, "compiles": 0})
        entry["seconds"] += seconds
        entry["compiles"] += kind == "compile"
    details = {
        "data_line_s": _between(at, "first", "data"),  # data read, network and steps built
        "initial_weights_s": _between(at, "fold", "initial"),  # their compile included
        "summary_s": _between(at, "last_round", "chosen"),
        "highlight_s": _between(at, "chosen", "highlight"),
        "report_s": _between(at, "highlight", "done"),
        "rounds": timings,
        "compiles_by_function": dict(sorted(by_function.items(), key=lambda kv: -kv[1]["seconds"])),
        "cache_hits": sum("Persistent compilation cache hit" in m for _, m in lines),
    }
    return {"split": split, "details": details, "records": _our_figures(records, workdir)}


def _between(at: dict, begin: str, end: str) -> float | None:
    return at[end] - at[begin] if begin in at and end in at else None


def _our_figures(records: list[dict], workdir: str) -> dict:
    with open(workdir_files.WorkdirFiles(workdir).summary) as f:
        fold = json.load(f)["folds"][0]
    return {
        "rounds": [
            {
                "round": r["round"],
                "train_size": r["train_size"],
                **{p: {k: r[p][k] for k in ("macro_f1", "accuracy")} for p in ("val", "test")},
            }
            for r in records
        ],
        "chosen_round": fold["chosen_round"],
    }


def split_torch(process: dict, result: dict) -> dict:
    """The PyTorch loop's wall time split into `TORCH_PARTS` from its own stamps and seconds."""
    stamps, rounds = result["stamps"], result["rounds"]
    split = {
        "imports_s": stamps["imported"] - process["start"],
        "setup_s": stamps["built"] - stamps["imported"],  # the .npz read, the network
        "training_s": sum(r["train_s"] for r in rounds),
        "likelihood_passes_s": sum(r["likelihood_s"] for r in rounds),
        "evaluation_s": sum(r["evaluation_s"] for r in rounds),
        "checkpoints_s": sum(r["checkpoint_s"] for r in rounds),
    }
    split["exit_s"] = process["end"] - stamps["end"]
    split["other_s"] = process["wall_s"] - sum(split.values())  # the selections, JSON out
    figures = {
        "rounds": [
            {"round": r["round"], "train_size": r["train_size"], "val": r["val"], "test": r["test"]}
            for r in rounds
        ],
        "chosen_round": result["chosen_round"],
    }
    return {"split": split, "details": {"threads": result["threads"]}, "records": figures}
