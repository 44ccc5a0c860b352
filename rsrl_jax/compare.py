"""`python -m rsrl_jax.compare` runs the command in `rsrl_jax/cli/compare.py`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("rsrl_jax.cli.compare", run_name="__main__", alter_sys=True)
