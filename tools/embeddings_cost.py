"""What an embeddings run costs, and what confident learning adds: two runs, one JSON.

  python tools/embeddings_cost.py [--out=runs/embeddings_cost] [--repeats=1]

Writes 3000 x 128 vectors (`study_bench.embeddings_data`), then runs
`configs/embeddings.py` (5 folds, 6 rounds) with `method.selection=rsrl` and with
`confident_learning`, one after the other (each repetition alternates which goes first), each
in its own process timed from start to exit. OUT/cost.json keeps each run's wall seconds,
its rounds' training and evaluation seconds (timings.jsonl) and the cross-fitting seconds
its log reports; `python tools/docs_figures.py` renders it into docs/generated/.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

SELECTIONS = ("rsrl", "confident_learning")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the clone's benchmarks/ (not installed), imported in main
CROSS_FIT = re.compile(r"round \d+: cross-fitting, \d+ copies for \d+ lane\(s\), ([\d.]+) s")


def command(data: str, workdir: str, selection: str) -> list[str]:
    return [
        "python", "-m", "rsrl_jax.main", "--config=configs/embeddings.py",
        f"--workdir={workdir}", f"--config.data.dir={data}", "--config.rsrl.rounds=6",
        f"--config.method.selection={selection}", "--config.log.progress=False",
    ]  # fmt: skip


def timed_run(argv: list[str], workdir: str) -> dict:
    shutil.rmtree(workdir, ignore_errors=True)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv[1:]], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    with open(os.path.join(workdir, "timings.jsonl")) as f:
        rounds = [json.loads(line) for line in f if line.strip()]
    with open(os.path.join(workdir, "log.txt")) as f:
        cross_fit = [float(m.group(1)) for m in CROSS_FIT.finditer(f.read())]
    return {
        "wall_s": wall,
        "load_1min_before": load,
        "rounds": rounds,
        "cross_fit_s": cross_fit,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/embeddings_cost")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    from benchmarks import study_bench

    data = os.path.join(args.out, "vectors")
    study_bench.embeddings_data(data, 3000, 128)
    out = {
        "command": "python tools/embeddings_cost.py"
        + "".join(f" {a}" for a in argv or sys.argv[1:]),
        "runs": {s: " ".join(command("DIR", "W", s)) for s in SELECTIONS},
        "cpu_count": os.cpu_count(),
        "repetitions": [],
    }
    for i in range(args.repeats):
        order = SELECTIONS if i % 2 == 0 else SELECTIONS[::-1]
        rep = {}
        for selection in order:
            workdir = os.path.join(args.out, selection)
            print(f"repetition {i + 1}: {selection}", flush=True)
            rep[selection] = timed_run(command(data, workdir, selection), workdir)
        out["repetitions"].append(rep)
    with open(os.path.join(args.out, "cost.json"), "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {os.path.join(args.out, 'cost.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
