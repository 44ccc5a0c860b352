"""`python -m rsrl_jax.main` runs the command in `rsrl_jax/cli/main.py`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("rsrl_jax.cli.main", run_name="__main__", alter_sys=True)
