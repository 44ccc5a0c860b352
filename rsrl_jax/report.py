"""`python -m rsrl_jax.report` runs the command in `rsrl_jax/cli/report.py`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("rsrl_jax.cli.report", run_name="__main__", alter_sys=True)
