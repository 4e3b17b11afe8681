"""An xgboost model scored one row at a time through libxgboost's C API, without xgboost's Python layer.

Why not ``xgboost.Booster``: importing the ``xgboost`` package imports numpy, ``scipy.sparse``
and (through its scikit-learn wrapper) ``scipy.special`` whatever one uses, about a third of a
model function's cold start, and scipy and numpy are most of its Lambda package's bytes. Per
call, ``Booster.inplace_predict`` also spends ~0.2 ms in Python (type probes for pandas, polars,
arrow and cupy, JSON argument building, a numpy copy of the output) around a C call that takes
less for one row. This module loads the same shared library the wheel ships
(``xgboost/lib/libxgboost.so``, found without importing the package) and calls the documented
C API (``xgboost/c_api.h``): ``XGBoosterLoadModel`` and ``XGBoosterPredictFromDense``, the call
``inplace_predict`` itself makes, with the same configuration (missing values are NaN), so the
scores are xgboost's own (``tests/test_native_booster.py`` compares them with
``Booster.inplace_predict``).
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import math
import threading
from collections.abc import Sequence
from pathlib import Path

from features.errors import ConfigError

_bst_ulong = ctypes.c_uint64
_PREDICT_CONFIG = json.dumps(
    {
        "type": 0,  # the transformed prediction (a probability for binary:logistic), as inplace_predict
        "training": False,
        "iteration_begin": 0,
        "iteration_end": 0,  # every tree
        "missing": math.nan,  # json writes NaN, which xgboost's parser reads
        "strict_shape": False,
        "cache_id": 0,
    }
).encode()

_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()


class XGBoostError(RuntimeError):
    """A C API call failed; the message is xgboost's own (``XGBGetLastError``)."""


def library_path() -> Path:
    """``libxgboost.so`` inside the installed ``xgboost`` package, located without importing it."""
    spec = importlib.util.find_spec("xgboost")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("xgboost is not installed: the model function needs its native library")
    for folder in spec.submodule_search_locations:
        for name in ("libxgboost.so", "libxgboost.dylib", "xgboost.dll"):
            path = Path(folder) / "lib" / name
            if path.is_file():
                return path
    raise ConfigError(f"xgboost is installed at {list(spec.submodule_search_locations)} without its native library")


def _library() -> ctypes.CDLL:
    global _lib
    with _lib_lock:
        if _lib is None:
            lib = ctypes.cdll.LoadLibrary(str(library_path()))
            lib.XGBGetLastError.restype = ctypes.c_char_p
            _lib = lib
        return _lib


def _check(code: int) -> None:
    if code != 0:
        message = _library().XGBGetLastError()
        raise XGBoostError(message.decode(errors="replace") if message else "xgboost call failed")


class _Proxy:
    """One thread's proxy DMatrix (``XGProxyDMatrixCreate``), freed with the thread's locals.

    ``XGBoosterPredictFromDense`` given no proxy builds one per call, and a new proxy's
    context probes the process's CPU quota (cgroup files, parsed with ``std::regex``): about
    60 µs a row, a third of the call. A proxy only holds the last array it was given, so
    each thread keeps its own."""

    def __init__(self) -> None:
        self.handle = ctypes.c_void_p()
        _check(_library().XGProxyDMatrixCreate(ctypes.byref(self.handle)))

    def __del__(self) -> None:
        handle, self.handle = getattr(self, "handle", None), None
        if handle is not None and handle.value and _lib is not None:
            _lib.XGDMatrixFree(handle)


class NativeBooster:
    """One loaded model; ``predict_row`` is safe to call from several threads at once (xgboost's
    in-place prediction keeps its output per thread, and each thread has its own proxy)."""

    def __init__(self, handle: ctypes.c_void_p, num_features: int, feature_names: tuple[str, ...]):
        self._handle = handle
        self._predict = _library().XGBoosterPredictFromDense
        self._local = threading.local()
        self.num_features = num_features
        self.feature_names = feature_names
        self._row_type = ctypes.c_float * num_features
        self._interface_prefix = b'{"data": ['
        self._interface_suffix = f', true], "shape": [1, {num_features}], "typestr": "<f4", "version": 3}}'.encode()

    @classmethod
    def load(cls, model_file: Path, nthread: int = 1) -> NativeBooster:
        """The model saved in ``model_file`` (xgboost's ``.ubj`` or ``.json``), scoring with
        ``nthread`` threads (one row per call: more threads only add overhead)."""
        lib = _library()
        handle = ctypes.c_void_p()
        _check(lib.XGBoosterCreate(None, _bst_ulong(0), ctypes.byref(handle)))
        try:
            _check(lib.XGBoosterLoadModel(handle, str(model_file).encode()))
            _check(lib.XGBoosterSetParam(handle, b"nthread", str(nthread).encode()))
            n = _bst_ulong()
            _check(lib.XGBoosterGetNumFeature(handle, ctypes.byref(n)))
            length, names = _bst_ulong(), ctypes.POINTER(ctypes.c_char_p)()
            _check(lib.XGBoosterGetStrFeatureInfo(handle, b"feature_name", ctypes.byref(length), ctypes.byref(names)))
            feature_names = tuple(names[i].decode() for i in range(length.value))
        except XGBoostError:
            lib.XGBoosterFree(handle)
            raise
        return cls(handle, int(n.value), feature_names)

    def save_model(self, model_file: str | Path) -> None:
        """Write the model as xgboost does (the file name's suffix picks ``.ubj`` or ``.json``)."""
        _check(_library().XGBoosterSaveModel(self._handle, str(model_file).encode()))

    def predict_row(self, values: Sequence[float]) -> float:
        """The model's output for one row of ``num_features`` values in input order (NaN: missing)."""
        if len(values) != self.num_features:
            raise ValueError(f"the model takes {self.num_features} features, got {len(values)}")
        proxy = getattr(self._local, "proxy", None)
        if proxy is None:
            proxy = self._local.proxy = _Proxy()
        row = self._row_type(*values)
        interface = self._interface_prefix + str(ctypes.addressof(row)).encode() + self._interface_suffix
        shape, dims, out = ctypes.POINTER(_bst_ulong)(), _bst_ulong(), ctypes.POINTER(ctypes.c_float)()
        _check(
            self._predict(
                self._handle,
                interface,
                _PREDICT_CONFIG,
                proxy.handle,
                ctypes.byref(shape),
                ctypes.byref(dims),
                ctypes.byref(out),
            )
        )
        return float(out[0])

    def __del__(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is not None and _lib is not None:
            _lib.XGBoosterFree(handle)
