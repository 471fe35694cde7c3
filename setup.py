"""The optional C speed-ups: the RADIUS hot path (ztsim.radius._fast), the datagram
rings of the UDP servers (ztsim._mmsg) and Milenage on AES-NI (ztsim.aka._milenage).

Everything else is in pyproject.toml. `optional=True`: without a C compiler the
install goes on and ztsim.radius.fastpath, ztsim.mmsg and ztsim.aka.milenage run their
Python references.
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
            "ztsim.aka._milenage",
            ["src/ztsim/aka/_milenage.c"],
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
