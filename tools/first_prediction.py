"""Time to a first prediction from Python: import, load a finished run, score one photo.

  python tools/first_prediction.py WORKDIR PHOTO

Prints the seconds of each step in a fresh process (nothing compiled beforehand: the Python
API keeps no compilation cache on disk), then a second prediction of the same photo.
"""

import sys
import time

start = time.perf_counter()


def lap(what: str, since: float) -> float:
    now = time.perf_counter()
    print(f"{what}: {now - since:.2f} s", flush=True)
    return now


def main(workdir: str, photo: str) -> None:
    import rsrl_jax

    t = lap("import rsrl_jax", start)
    model = rsrl_jax.load(workdir)
    t = lap(f"rsrl_jax.load (round {model.round} of fold {model.fold})", t)
    result = model.predict(photo)
    t = lap(f"first model.predict (score {result.score[0]})", t)
    print(f"time to first prediction: {t - start:.2f} s")
    model.predict(photo)
    lap("second model.predict", t)


if __name__ == "__main__":
    main(*sys.argv[1:])
