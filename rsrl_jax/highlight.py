"""`python -m rsrl_jax.highlight` runs the command in `rsrl_jax/cli/highlight.py`.

Also keeps the public name `rsrl_jax.highlight.min_correlation_diff` (paper eq. 4-5).
"""

import runpy

from rsrl_jax.analysis.highlight_maps import min_correlation_diff

__all__ = ["min_correlation_diff"]

if __name__ == "__main__":
    runpy.run_module("rsrl_jax.cli.highlight", run_name="__main__", alter_sys=True)
