"""`python -m rsrl_jax.embed` runs the command in `rsrl_jax/cli/embed.py`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("rsrl_jax.cli.embed", run_name="__main__", alter_sys=True)
