"""The optional C speed-ups: the RADIUS hot path (ztsim.radius._fast) and the datagram
rings of the UDP servers (ztsim._mmsg).

Everything else is in pyproject.toml. `optional=True`: without a C compiler the
install goes on and ztsim.radius.fastpath and ztsim.mmsg run their Python references.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ztsim.radius._fast",
            ["src/ztsim/radius/_fast.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        ),
        Extension(
            "ztsim._mmsg",
            ["src/ztsim/_mmsg.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        ),
    ]
)
