"""`python -m rsrl_jax.benchmark` runs the command in `rsrl_jax/cli/benchmark.py`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("rsrl_jax.cli.benchmark", run_name="__main__", alter_sys=True)
