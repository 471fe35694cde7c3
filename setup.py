"""The optional C speed-up of the RADIUS hot path (ztsim.radius._fast).

Everything else is in pyproject.toml. `optional=True`: without a C compiler the
install goes on and ztsim.radius.fastpath runs its Python reference instead.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ztsim.radius._fast",
            ["src/ztsim/radius/_fast.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
