"""Build of the optional compiled hot path (sockcap/_speedups.c).

``optional=True``: without a C compiler (or Python headers) the build of the extension
is skipped with a warning and the pure-Python sockcap installs and runs as before.
Everything else about the package is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sockcap._speedups",
            sources=["sockcap/_speedups.c"],
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wno-missing-field-initializers"],
            optional=True,
        )
    ]
)
