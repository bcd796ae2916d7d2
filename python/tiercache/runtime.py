"""``Runtime``: one tiercache runtime, every C API call as a method.

A ``Runtime`` owns a ``tiercache_runtime*``. Config keys are the runtime's
field names (docs/runtime.md: ``gpu_cache_bytes``, ``dram_bytes``,
``nvme_path``, ...); the config starts from the environment
(``TIERCACHE_CONFIG``, ``TIERCACHE_<KEY>``) and the keys given win. Pointers
and streams are plain ints (``None`` is NULL: the default stream). Every
failure raises ``tiercache.Error`` (a subclass per status) carrying the
library's message.

Thread safety: every method may be called from any thread, as the C API
allows; ``close()`` must not race with other calls (calls after it raise).
"""
import ctypes
import json

from . import _lib
from ._errors import Error

__all__ = ["Runtime", "NO_GROUP", "NEVER", "SAVE_KEEP_DEVICE"]

NO_GROUP = 2**64 - 1
NEVER = 2**64 - 1
SAVE_KEEP_DEVICE = 1


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pointer(data, nbytes):
    """(address, keep-alive) for an int address or a buffer-protocol object."""
    if isinstance(data, int):
        return data, None
    view = memoryview(data).cast("B")
    if nbytes is not None and nbytes > view.nbytes:
        raise ValueError(f"nbytes {nbytes} exceeds the buffer's {view.nbytes} bytes")
    if view.readonly:
        view = memoryview(bytearray(view))  # ctypes needs a writable buffer to take an address
    array = (ctypes.c_char * view.nbytes).from_buffer(view)
    return ctypes.addressof(array), (view, array)


class Runtime:
    """A tiercache runtime. ``Runtime(gpu_cache_bytes="8GiB", dram_bytes=...)``."""

    def __init__(self, config=None, **keys):
        lib = _lib.library()
        handle = ctypes.c_void_p()
        _lib.call("tiercache_config_from_env", ctypes.byref(handle))
        try:
            for key, value in {**(config or {}), **keys}.items():
                _lib.call("tiercache_config_set", handle, key.encode(), _text(value).encode())
            runtime = ctypes.c_void_p()
            _lib.call("tiercache_open", handle, ctypes.byref(runtime))
        finally:
            lib.tiercache_config_destroy(handle)
        self._rt = runtime
        emulated = ctypes.c_int()
        self._call("tiercache_is_emulated", ctypes.byref(emulated))
        self.emulated = bool(emulated.value)

    # ---- lifetime ----------------------------------------------------------
    def close(self):
        """Waits for transfers and frees everything. Idempotent."""
        rt, self._rt = self._rt, None
        if rt is not None:
            _lib.call("tiercache_close", rt)

    @property
    def closed(self):
        return self._rt is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to report to
            pass

    def _call(self, name, *args):
        if self._rt is None:
            raise Error(-1, f"{name}: the runtime is closed")
        return _lib.call(name, self._rt, *args)

    def drain(self):
        """Waits until background transfers have finished (a host wait)."""
        self._call("tiercache_drain")

    def stats(self):
        """The runtime's statistics (tiers, blocks, allocator, activations) as a dict."""
        return json.loads(self.stats_json())

    def stats_json(self):
        needed = ctypes.c_size_t()
        lib = _lib.library()
        status = lib.tiercache_stats_json(self._handle(), None, 0, ctypes.byref(needed))
        if status != -3:  # (NULL, 0, &needed) answers "out of space" with the size
            _lib.check(lib, status, "tiercache_stats_json")
        buffer = ctypes.create_string_buffer(needed.value + 4096)  # stats may grow in between
        self._call("tiercache_stats_json", buffer, len(buffer), None)
        return buffer.value.decode()

    def _handle(self):
        if self._rt is None:
            raise Error(-1, "the runtime is closed")
        return self._rt

    # ---- blocks ------------------------------------------------------------
    def create_group(self, name=None):
        out = ctypes.c_uint64()
        self._call("tiercache_group_create", _name(name), ctypes.byref(out))
        return out.value

    def register(self, data, nbytes=None, home="dram", name=None, group=NO_GROUP):
        """Copies a host buffer (an address with ``nbytes``, or a buffer object) into
        the home tier; returns the block id."""
        if isinstance(data, int) and nbytes is None:
            raise ValueError("register: an address needs nbytes")
        address, keep = _pointer(data, nbytes)
        size = nbytes if nbytes is not None else memoryview(data).nbytes
        out = ctypes.c_uint64()
        self._call("tiercache_register_buffer", _name(name), ctypes.c_void_p(address), size,
                   home.encode(), group, ctypes.byref(out))
        del keep
        return out.value

    def register_file(self, path, offset, nbytes, home="dram", name=None, group=NO_GROUP):
        out = ctypes.c_uint64()
        self._call("tiercache_register_file", _name(name), str(path).encode(), offset, nbytes,
                   home.encode(), group, ctypes.byref(out))
        return out.value

    def register_safetensors(self, path, group_prefix=None, block_prefix=None, persist=None):
        """Registers a safetensors checkpoint read in place (a file, an index
        .json, or a directory holding either; shards are followed). Returns its
        table as a dict: ``id``, ``files``, ``tensor_bytes``, ``blocks`` [{id,
        name, bytes, persisted}] and ``tensors`` [{name, dtype, shape, block,
        offset, bytes}] (block None for an empty tensor). ``persist="pmem"``
        keeps blocks in the PMEM tier for a later process (warm restart)."""
        out = ctypes.c_uint64()
        self._call("tiercache_register_safetensors", str(path).encode(), _name(group_prefix),
                   _name(block_prefix), _name(persist), ctypes.byref(out))
        table = json.loads(self._text_out("tiercache_checkpoint_json", out.value))
        table["id"] = out.value
        return table

    def close_checkpoint(self, checkpoint):
        """Unregisters a checkpoint's blocks (Busy while one is acquired)."""
        self._call("tiercache_checkpoint_close", checkpoint)

    def _text_out(self, name, *args):
        """A string returned by the C API's buffer rule."""
        needed = ctypes.c_size_t()
        lib = _lib.library()
        status = getattr(lib, name)(self._handle(), *args, None, 0, ctypes.byref(needed))
        if status != -3:
            _lib.check(lib, status, name)
        buffer = ctypes.create_string_buffer(needed.value)
        self._call(name, *args, buffer, len(buffer), None)
        return buffer.value.decode()

    def unregister(self, block):
        self._call("tiercache_unregister", block)

    def find_block(self, name):
        out = ctypes.c_uint64()
        self._call("tiercache_find_block", name.encode(), ctypes.byref(out))
        return out.value

    def block_size(self, block):
        out = ctypes.c_uint64()
        self._call("tiercache_block_size", block, ctypes.byref(out))
        return out.value

    # ---- the data path ------------------------------------------------------
    def acquire(self, block, stream=None):
        """Pins the block on the GPU; returns its device address, valid in `stream`'s order."""
        out = ctypes.c_void_p()
        self._call("tiercache_acquire", block, _stream(stream), ctypes.byref(out))
        return out.value

    def try_acquire(self, block, stream=None):
        """As acquire, but None (and a prefetch started) when the block is not on the GPU."""
        out = ctypes.c_void_p()
        status = _lib.library().tiercache_try_acquire(self._handle(), block, _stream(stream),
                                                      ctypes.byref(out))
        if status == -9:
            return None
        _lib.check(_lib.library(), status, "tiercache_try_acquire")
        return out.value

    def release(self, block, stream=None):
        self._call("tiercache_release", block, _stream(stream))

    def prefetch(self, blocks):
        array = _ids(blocks)
        self._call("tiercache_prefetch", array, len(array))

    def hint_next_use(self, block, accesses_from_now):
        self._call("tiercache_hint_next_use", block, accesses_from_now)

    def hint_order(self, blocks):
        array = _ids(blocks)
        self._call("tiercache_hint_order", array, len(array))

    def evict(self, block):
        self._call("tiercache_evict", block)

    # ---- device memory --------------------------------------------------------
    def device_alloc(self, nbytes, stream=None):
        out = ctypes.c_void_p()
        self._call("tiercache_device_alloc", nbytes, _stream(stream), ctypes.byref(out))
        return out.value

    def device_free(self, address, stream=None):
        self._call("tiercache_device_free", ctypes.c_void_p(address), _stream(stream))

    # ---- activations ------------------------------------------------------------
    def save(self, address, nbytes, stream=None, keep_device=False):
        """Copies device memory to a host tier; returns the activation handle."""
        out = ctypes.c_uint64()
        self._call("tiercache_save", ctypes.c_void_p(address), nbytes, _stream(stream),
                   SAVE_KEEP_DEVICE if keep_device else 0, ctypes.byref(out))
        return out.value

    def save_wait(self, handle, stream=None):
        """Makes `stream` wait until the save has read its device memory."""
        self._call("tiercache_save_wait", handle, _stream(stream))

    def restore(self, handle, stream=None):
        """New device memory (free it with device_free) holding the saved bytes."""
        out = ctypes.c_void_p()
        self._call("tiercache_restore", handle, _stream(stream), ctypes.byref(out))
        return out.value

    def prefetch_restore(self, handles):
        array = _ids(handles)
        self._call("tiercache_prefetch_restore", array, len(array))

    def discard(self, handle):
        self._call("tiercache_discard", handle)

    # ---- streams and copies -------------------------------------------------------
    def stream_create(self):
        out = ctypes.c_void_p()
        self._call("tiercache_stream_create", ctypes.byref(out))
        return out.value

    def stream_destroy(self, stream):
        self._call("tiercache_stream_destroy", _stream(stream))

    def synchronize(self, stream=None):
        self._call("tiercache_stream_synchronize", _stream(stream))

    def copy_to_host(self, host_address, device_address, nbytes, stream=None):
        self._call("tiercache_copy_to_host", ctypes.c_void_p(host_address),
                   ctypes.c_void_p(device_address), nbytes, _stream(stream))

    def copy_to_device(self, device_address, host_address, nbytes, stream=None):
        self._call("tiercache_copy_to_device", ctypes.c_void_p(device_address),
                   ctypes.c_void_p(host_address), nbytes, _stream(stream))


def _name(name):
    return None if name is None else name.encode()


def _stream(stream):
    return ctypes.c_void_p(stream) if stream else None


def _ids(values):
    values = list(values)
    return (ctypes.c_uint64 * len(values))(*values)
