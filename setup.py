"""Build hook for the one compiled module; the project's metadata lives in pyproject.toml.

``kernels._fused`` (kernels/_fused.c: HALO's and Adam's updates as single fused loops,
bit-identical to their NumPy ufunc chains) is optional: where no C compiler is present
the install still succeeds and the kernels fall back to the ufunc chains
(``kernels.fused.native`` is None; ``halo-agent bench kernels`` says which ran).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "kernels._fused",
            ["kernels/_fused.c"],
            optional=True,
            # -ffp-contract=off: no a*b+c fused into one rounding (aarch64 would), so the
            # loops round exactly as the ufunc chains do; -fno-math-errno lets sqrtf vectorise
            extra_compile_args=["-O3", "-std=c99", "-ffp-contract=off", "-fno-math-errno"],
        )
    ]
)
