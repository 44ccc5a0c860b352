"""`python -m rsrl_jax.convert` runs the command in `rsrl_jax/cli/convert.py`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("rsrl_jax.cli.convert", run_name="__main__", alter_sys=True)
