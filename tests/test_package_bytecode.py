"""Bytecode for Lambda packages: compiled once, for the runtime's Python only, never checked again.

These tests compile small sources and read the bytecode the importer would read; the packages
themselves are checked in ``tests/test_lambda_package.py`` and ``tests/test_collector_package.py``,
which import their handlers from a read-only copy and show that nothing is compiled there.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from serving.deploy.bytecode import (
    UncompilableSource,
    bytecode_name,
    bytecode_plan,
    compile_entries,
    compile_tree,
)
from serving.deploy.requirements import requirements_digest

SOURCE = b'"""A module."""\n\nVALUE = 41 + 1\n'


def header(pyc: bytes) -> tuple[bytes, int, bytes]:
    """PEP 552: magic number, flags (``0b01``: hash-based, unchecked), the source's hash."""
    return pyc[:4], int.from_bytes(pyc[4:8], "little"), pyc[8:16]


def test_bytecode_is_named_as_the_python311_runtime_looks_for_it() -> None:
    assert bytecode_name("serving/model_function.py") == "serving/__pycache__/model_function.cpython-311.pyc"
    assert bytecode_name("six.py") == "__pycache__/six.cpython-311.pyc"


def test_compiled_entries_are_unchecked_hash_bytecode_of_their_source_written_outside_the_source_tree(
    tmp_path: Path,
) -> None:
    source = tmp_path / "src" / "pkg" / "mod.py"
    source.parent.mkdir(parents=True)
    source.write_bytes(SOURCE)
    (source.parent / "data.yaml").write_text("a: 1\n")

    out = compile_entries([(source, "pkg/mod.py"), (source.parent / "data.yaml", "pkg/data.yaml")], tmp_path / "bc")

    assert [name for _, name in out] == ["pkg/__pycache__/mod.cpython-311.pyc"]
    assert header(out[0][0].read_bytes()) == (importlib.util.MAGIC_NUMBER, 0b01, importlib.util.source_hash(SOURCE))
    assert not (source.parent / "__pycache__").exists()


def test_unchecked_bytecode_is_used_even_when_the_source_changed_after_it_was_compiled(tmp_path: Path) -> None:
    """What makes a zip's mtimes irrelevant: the importer never compares the source again."""
    (tmp_path / "mod.py").write_bytes(SOURCE)
    compile_tree(tmp_path)
    (tmp_path / "mod.py").write_bytes(SOURCE.replace(b"41", b"0"))

    child = "import sys; sys.path.insert(0, sys.argv[1]); import mod; print(mod.VALUE)"
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", child, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )

    assert done.stdout.strip() == "42"


def test_compiling_a_tree_puts_bytecode_beside_each_module_and_names_the_files_that_are_not_python(
    tmp_path: Path,
) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_bytes(b"")
    (tmp_path / "pkg" / "good.py").write_bytes(SOURCE)
    (tmp_path / "pkg" / "py2_only.py").write_text("print 'hello'\n")

    compiled, failed = compile_tree(tmp_path)

    assert compiled == 2
    assert sorted(p.name for p in (tmp_path / "pkg" / "__pycache__").iterdir()) == [
        "__init__.cpython-311.pyc",
        "good.cpython-311.pyc",
    ]
    assert len(failed) == 1 and failed[0].startswith("pkg/py2_only.py: ")


def test_an_uncompilable_entry_stops_the_package_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.py"
    bad.write_text("def f(:\n")
    with pytest.raises(UncompilableSource, match=r"^serving/broken\.py: "):
        compile_entries([(bad, "serving/broken.py")], tmp_path / "bc")


def test_an_interpreter_other_than_the_runtimes_packages_without_bytecode_and_says_why() -> None:
    plan = bytecode_plan((3, 12), "cpython-312")

    assert not plan.enabled
    assert plan.note(0) == (
        "no bytecode: packaging with Python 3.12 (cpython-312), but the python3.11 runtime only reads "
        "cpython-311 bytecode, so every cold start will compile from source; "
        "package with a Python 3.11 interpreter to ship bytecode"
    )


def test_the_runtimes_interpreter_compiles_and_says_how_much() -> None:
    plan = bytecode_plan((3, 11), "cpython-311")
    assert plan.enabled and plan.note(12) == "bytecode for 12 modules (cpython-311, unchecked hash)"


def test_a_layer_cached_with_bytecode_is_never_reused_by_an_interpreter_that_cannot_compile_it() -> None:
    assert requirements_digest(plan=bytecode_plan((3, 11), "cpython-311")) != requirements_digest(
        plan=bytecode_plan((3, 12), "cpython-312")
    )
