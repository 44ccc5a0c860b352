"""`python -m rsrl_jax.vit_benchmark` runs the command in `rsrl_jax/cli/vit_benchmark.py`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("rsrl_jax.cli.vit_benchmark", run_name="__main__", alter_sys=True)
