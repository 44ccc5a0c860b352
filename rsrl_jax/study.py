"""`python -m rsrl_jax.study` runs the command in `rsrl_jax/cli/study.py`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("rsrl_jax.cli.study", run_name="__main__", alter_sys=True)
