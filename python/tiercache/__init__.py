"""tiercache: a tiered GPU memory and parameter cache, from Python.

``import tiercache`` gives a ctypes binding over the C API (``Runtime``), the
errors it raises (``Error`` and one subclass per status) and
``preload_stats()`` for the interposition library. ``tiercache.torch`` (import
it explicitly; it needs PyTorch) offloads a model's weights and a training
step's activations.

The library is loaded on first use (see ``tiercache._lib``): import ``torch``
before the first call so that libtiercache shares PyTorch's CUDA runtime.
"""
import ctypes
import json
import os

from ._errors import (AlreadyExists, Busy, Corruption, Error, InvalidArgument, IoError,
                      NotFound, OutOfMemory, OutOfSpace, Unavailable, Unsupported)
from ._lib import PACKAGE_VERSION as __version__
from ._lib import library_path
from .runtime import NEVER, NO_GROUP, Runtime

__all__ = ["Runtime", "Error", "InvalidArgument", "NotFound", "OutOfSpace", "OutOfMemory",
           "IoError", "Corruption", "Unavailable", "Busy", "AlreadyExists", "Unsupported",
           "NO_GROUP", "NEVER", "library_version", "library_path", "preload_stats",
           "__version__"]


def library_version():
    """The loaded libtiercache's version ("0.1.0")."""
    from . import _lib
    return _lib.library().tiercache_version().decode()


_PRELOAD_SYMBOL = "tiercache_preload_stats_json"
_PRELOAD_NAMES = ("libtiercache_preload.so", "libtiercache_preload.so.0")


def _preload_function():
    candidates = [ctypes.CDLL(None)]  # LD_PRELOAD'ed and globally loaded libraries
    mode = getattr(os, "RTLD_NOLOAD", 4) | getattr(os, "RTLD_LAZY", 1)
    for name in _PRELOAD_NAMES:  # loaded privately, e.g. as a CUDAPluggableAllocator
        try:
            candidates.append(ctypes.CDLL(name, mode=mode))
        except OSError:
            pass
    for lib in candidates:
        try:
            function = getattr(lib, _PRELOAD_SYMBOL)
        except AttributeError:
            continue
        function.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
        function.restype = ctypes.c_int
        return function
    raise Unavailable(-7, f"preload_stats: {_PRELOAD_SYMBOL} is not in this process; load "
                          "libtiercache_preload.so with LD_PRELOAD or as PyTorch's "
                          "CUDAPluggableAllocator first")


def preload_stats():
    """The preload library's statistics (allocations, copies, traces) as a dict."""
    function = _preload_function()
    needed = ctypes.c_size_t()
    status = function(None, 0, ctypes.byref(needed))
    if status not in (0, -3):
        raise Error(status, f"{_PRELOAD_SYMBOL} failed with status {status}")
    buffer = ctypes.create_string_buffer(needed.value + 4096)
    status = function(buffer, len(buffer), None)
    if status != 0:
        raise Error(status, f"{_PRELOAD_SYMBOL} failed with status {status}")
    return json.loads(buffer.value.decode())
