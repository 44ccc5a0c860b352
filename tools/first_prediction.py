"""Time to a first prediction from Python: import, load a finished run, score one photo.

  python tools/first_prediction.py WORKDIR PHOTO [JSON_OUT]

Prints the seconds of each step in a fresh process (nothing compiled beforehand: the Python
API keeps no compilation cache on disk), then a second prediction of the same photo; with
JSON_OUT also writes them there (`tools/docs_figures.py` renders them for docs/api.md).
"""

import json
import os
import sys
import time

start = time.perf_counter()
laps: dict = {}


def lap(key: str, what: str, since: float) -> float:
    now = time.perf_counter()
    laps[key] = now - since
    print(f"{what}: {now - since:.2f} s", flush=True)
    return now


def main(workdir: str, photo: str, json_out: str = "") -> None:
    load = os.getloadavg()[0]
    import rsrl_jax

    t = lap("import_s", "import rsrl_jax", start)
    model = rsrl_jax.load(workdir)
    t = lap("load_s", f"rsrl_jax.load (round {model.round} of fold {model.fold})", t)
    result = model.predict(photo)
    t = lap("first_predict_s", f"first model.predict (score {result.score[0]})", t)
    laps["first_prediction_s"] = t - start
    print(f"time to first prediction: {t - start:.2f} s")
    model.predict(photo)
    lap("second_predict_s", "second model.predict", t)
    if json_out:
        from PIL import Image

        with Image.open(photo) as image:
            size = image.size
        figures = {"workdir": workdir, "round": model.round, "photo_size": size, **laps}
        with open(json_out, "w") as f:
            json.dump({**figures, "load_1min_before": load, "cpu_count": os.cpu_count()}, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
