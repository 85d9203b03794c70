"""Builds the optional native tree routine; all other metadata is in pyproject.toml.

Without a C compiler the build skips the extension (``optional=True``) and
chaincity runs the Python tree writer instead.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "chaincity.state._treecore",
            ["src/chaincity/state/_treecore.c"],
            extra_compile_args=["-std=c99", "-O2", "-Wall", "-Wextra"],
            optional=True,
        )
    ]
)
