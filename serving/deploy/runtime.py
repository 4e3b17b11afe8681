"""The AWS Lambda runtime every package is built for: what the wheels and the bytecode target."""

from __future__ import annotations

PYTHON_VERSION = "3.11"
RUNTIME = "python3.11"
ARCHITECTURE = "x86_64"
PLATFORM = "manylinux2014_x86_64"
"""Amazon Linux 2 (glibc 2.26) under the python3.11 runtime: manylinux_2_28 wheels would not load."""
CACHE_TAG = "cpython-" + PYTHON_VERSION.replace(".", "")
"""The ``__pycache__`` tag the runtime's interpreter looks for: ``cpython-311``."""
