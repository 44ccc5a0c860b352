"""`python -m rsrl_jax.highlight_eval` runs the command in `rsrl_jax/cli/highlight_eval.py`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("rsrl_jax.cli.highlight_eval", run_name="__main__", alter_sys=True)
