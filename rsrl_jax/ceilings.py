"""`python -m rsrl_jax.ceilings` runs the command in `rsrl_jax/cli/ceilings.py`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("rsrl_jax.cli.ceilings", run_name="__main__", alter_sys=True)
