"""`python -m rsrl_jax.data.benchmark` runs the command in `rsrl_jax/cli/data_benchmark.py`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("rsrl_jax.cli.data_benchmark", run_name="__main__", alter_sys=True)
