"""rsrl_jax: repetitive self-revised learning for imbalanced photo-aesthetics classification.

The Python API (`rsrl_jax.api`, imported on first use, so `import rsrl_jax` stays cheap):

    import rsrl_jax

    model = rsrl_jax.load("runs/demo")        # a finished run's chosen round, loaded once
    result = model.predict("photo.jpg")        # a path, PIL image, uint8 array, or a list
    print(result.score, result.expected_score)  # arrays [N]; probabilities [N, C]
    maps = model.highlight("photo.jpg")        # highlight regions as arrays (paper section IV)

    config = rsrl_jax.get_config("demo", {"rsrl.rounds": 2})
    rsrl_jax.train(config, "runs/mine")        # also rsrl_jax.compare, rsrl_jax.study

The commands: `python -m rsrl_jax` lists them.
"""

import sys
import types

__all__ = [
    "Highlights",
    "Model",
    "Prediction",
    "compare",
    "get_config",
    "load",
    "study",
    "train",
]


def __getattr__(name: str):
    # `rsrl_jax.compare` and `rsrl_jax.study` are also the `python -m` modules' names; those
    # modules are run, never imported (and _Package keeps an import from taking the names).
    if name in __all__:
        from rsrl_jax import console

        # The console first: the API's imports (Orbax) log through absl, which, with no
        # handler set up, calls logging.basicConfig ('INFO:absl:' lines, library chatter)
        # that for_python would then take for the caller's own set-up.
        console.for_python()
        from rsrl_jax import api

        return getattr(api, name)
    raise AttributeError(f"module 'rsrl_jax' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])


class _Package(types.ModuleType):
    """The package, whose API names are never replaced by the command modules of the same
    name: Python's import system sets `rsrl_jax.study` to the module on `import
    rsrl_jax.study`, which would shadow `rsrl_jax.study(...)`. The module stays in
    sys.modules (`python -m rsrl_jax.study` runs it as `__main__` anyway)."""

    def __setattr__(self, name, value):
        if name in __all__ and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
