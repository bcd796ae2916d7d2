"""Finding, loading and declaring libtiercache (ctypes, no compiled extension).

The library is looked for, in order, at ``TIERCACHE_LIBRARY`` (a file), in the
build tree next to this source tree (``build*/runtime/libtiercache.so``), beside
the installed package (``<prefix>/lib``), then by the dynamic loader's own
search (``libtiercache.so.0``, so ``LD_LIBRARY_PATH`` works). The first one
found is loaded once per process, its version checked against this package's,
and every C function given its argument and result types.

Thread safety: ``library()`` may be called from any thread; loading happens
once under a lock.
"""
import ctypes
import glob
import os
import sys
import threading

from ._errors import Error, check

__all__ = ["library", "library_path", "PACKAGE_VERSION"]

PACKAGE_VERSION = "0.1.0"
_SONAME = "libtiercache.so.0"

_lock = threading.Lock()
_loaded = None
_loaded_path = None

_p = ctypes.c_void_p
_u64 = ctypes.c_uint64
_size = ctypes.c_size_t
_str = ctypes.c_char_p
_int = ctypes.c_int

# name: (argument types); every function returns int unless listed in _RESULTS.
_FUNCTIONS = {
    "tiercache_version": (),
    "tiercache_last_error": (),
    "tiercache_status_name": (_int,),
    "tiercache_config_create": (ctypes.POINTER(_p),),
    "tiercache_config_from_env": (ctypes.POINTER(_p),),
    "tiercache_config_set": (_p, _str, _str),
    "tiercache_config_load_file": (_p, _str),
    "tiercache_config_to_json": (_p, _p, _size, ctypes.POINTER(_size)),
    "tiercache_config_destroy": (_p,),
    "tiercache_open": (_p, ctypes.POINTER(_p)),
    "tiercache_close": (_p,),
    "tiercache_drain": (_p,),
    "tiercache_is_emulated": (_p, ctypes.POINTER(_int)),
    "tiercache_stats_json": (_p, _p, _size, ctypes.POINTER(_size)),
    "tiercache_group_create": (_p, _str, ctypes.POINTER(_u64)),
    "tiercache_register_buffer": (_p, _str, _p, _u64, _str, _u64, ctypes.POINTER(_u64)),
    "tiercache_register_file": (_p, _str, _str, _u64, _u64, _str, _u64, ctypes.POINTER(_u64)),
    "tiercache_register_safetensors": (_p, _str, _str, _str, _str, ctypes.POINTER(_u64)),
    "tiercache_checkpoint_close": (_p, _u64),
    "tiercache_checkpoint_json": (_p, _u64, _p, _size, ctypes.POINTER(_size)),
    "tiercache_unregister": (_p, _u64),
    "tiercache_find_block": (_p, _str, ctypes.POINTER(_u64)),
    "tiercache_block_size": (_p, _u64, ctypes.POINTER(_u64)),
    "tiercache_acquire": (_p, _u64, _p, ctypes.POINTER(_p)),
    "tiercache_try_acquire": (_p, _u64, _p, ctypes.POINTER(_p)),
    "tiercache_release": (_p, _u64, _p),
    "tiercache_prefetch": (_p, ctypes.POINTER(_u64), _size),
    "tiercache_hint_next_use": (_p, _u64, _u64),
    "tiercache_hint_order": (_p, ctypes.POINTER(_u64), _size),
    "tiercache_evict": (_p, _u64),
    "tiercache_device_alloc": (_p, _u64, _p, ctypes.POINTER(_p)),
    "tiercache_device_free": (_p, _p, _p),
    "tiercache_save": (_p, _p, _u64, _p, ctypes.c_uint, ctypes.POINTER(_u64)),
    "tiercache_save_wait": (_p, _u64, _p),
    "tiercache_restore": (_p, _u64, _p, ctypes.POINTER(_p)),
    "tiercache_prefetch_restore": (_p, ctypes.POINTER(_u64), _size),
    "tiercache_discard": (_p, _u64),
    "tiercache_stream_create": (_p, ctypes.POINTER(_p)),
    "tiercache_stream_destroy": (_p, _p),
    "tiercache_stream_synchronize": (_p, _p),
    "tiercache_copy_to_host": (_p, _p, _p, _u64, _p),
    "tiercache_copy_to_device": (_p, _p, _p, _u64, _p),
}
_RESULTS = {
    "tiercache_version": _str,
    "tiercache_last_error": _str,
    "tiercache_status_name": _str,
    "tiercache_config_destroy": None,
}


def _candidates():
    explicit = os.environ.get("TIERCACHE_LIBRARY")
    if explicit:
        yield explicit
        return  # asked for one file: never fall back to another silently
    here = os.path.dirname(os.path.abspath(__file__))
    source_root = os.path.dirname(os.path.dirname(here))  # python/tiercache -> repo
    for pattern in ("build/runtime/libtiercache.so", "build*/runtime/libtiercache.so"):
        for path in sorted(glob.glob(os.path.join(source_root, pattern))):
            yield path
    for prefix in (sys.prefix, os.path.dirname(os.path.dirname(here)), "/usr/local"):
        for lib in ("lib", "lib64"):
            path = os.path.join(prefix, lib, "libtiercache.so")
            if os.path.exists(path):
                yield path
    yield _SONAME  # the loader's search: LD_LIBRARY_PATH, ld.so.cache


def _declare(lib):
    for name, argtypes in _FUNCTIONS.items():
        try:
            function = getattr(lib, name)
        except AttributeError as e:
            raise Error(-11, f"{lib._name} lacks {name}: library older than this package") from e
        function.argtypes = list(argtypes)
        function.restype = _RESULTS.get(name, _int)


def _version_matches(library_version):
    mine = PACKAGE_VERSION.split(".")[:2]
    return library_version.split(".")[:2] == mine


def library():
    """The loaded libtiercache (a ctypes.CDLL), loading it on first use."""
    global _loaded, _loaded_path
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        tried = []
        for path in _candidates():
            if os.path.sep in path and not os.path.exists(path):
                tried.append(f"{path} (no such file)")
                continue
            try:
                lib = ctypes.CDLL(path)
            except OSError as e:
                tried.append(f"{path} ({e})")
                continue
            _declare(lib)
            version = lib.tiercache_version().decode()
            if not _version_matches(version):
                raise Error(-11, f"{path} is libtiercache {version}; this package is "
                                 f"{PACKAGE_VERSION} (major.minor must match)")
            _loaded, _loaded_path = lib, path
            return lib
        raise Error(-7, "libtiercache not found; set TIERCACHE_LIBRARY to the file. Tried: "
                        + "; ".join(tried))


def library_path():
    """Where the loaded library came from (loads it if need be)."""
    library()
    return _loaded_path


def call(name, *args):
    """Calls C function `name`; raises Error with tiercache_last_error() on failure."""
    lib = library()
    status = getattr(lib, name)(*args)
    check(lib, status, name)
    return status
