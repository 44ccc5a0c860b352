"""`python -m rsrl_jax.predict` runs the command in `rsrl_jax/cli/predict.py`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("rsrl_jax.cli.predict", run_name="__main__", alter_sys=True)
