"""`python -m rsrl_jax.pretrain` runs the command in `rsrl_jax/cli/pretrain.py`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("rsrl_jax.cli.pretrain", run_name="__main__", alter_sys=True)
