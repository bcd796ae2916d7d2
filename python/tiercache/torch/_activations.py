"""Activation offload: autograd's saved tensors through tiercache's activation store.

``offload_activations(min_bytes=...)`` returns an ``ActivationOffload``, a
context manager over ``torch.autograd.graph.saved_tensors_hooks``. While it is
entered, every tensor autograd saves that is on the compute device, at least
`min_bytes` large and not a parameter (a leaf that requires grad) is copied
to pinned DRAM (NVMe when DRAM is full) on the runtime's copy stream, after
the work already enqueued on PyTorch's current stream. The tensor's memory is
given back to PyTorch's caching allocator behind the copy: the pack hook has
a side stream wait for the save (``tiercache_save_wait``) and records the
tensor on it, so the allocator reuses the memory only once the copy has read
it. Backward restores in reverse order: unpacking one activation starts the
restores of the next `ahead` ones (the ones saved before it), so backward
finds them on the device. The exact bytes, shape and strides come back, so
gradients are bit-identical to a run without offload.

Backward may run after the ``with`` block: the runtime stays open until
``close()``. Saved activations never unpacked (a graph dropped without
backward) are discarded when their record is collected.

Thread safety: the hooks may run on any thread (autograd's backward threads
included); ``close()`` must not race with them.
"""
import collections
import threading
import weakref

import torch

from .. import _errors
from ..runtime import Runtime
from . import _memory
from ._sizes import parse_bytes

__all__ = ["offload_activations", "ActivationOffload"]


class _Saved:
    """A saved activation: the handle and what is needed to rebuild the tensor."""

    __slots__ = ("store", "handle", "seq", "nbytes", "dtype", "shape", "strides", "prefetched",
                 "__weakref__")

    def __init__(self, store, handle, seq, nbytes, tensor):
        self.store, self.handle, self.seq, self.nbytes = store, handle, seq, nbytes
        self.dtype, self.shape, self.strides = tensor.dtype, tuple(tensor.shape), tensor.stride()
        self.prefetched = False

    def __del__(self):
        if self.handle is not None:
            self.store._discard(self)


class _DeviceMemory:
    """Owns restored device memory; frees it in the order of the stream that used it."""

    def __init__(self, runtime, address, stream):
        self.runtime, self.address, self.stream = runtime, address, stream

    def __del__(self):
        if not self.runtime.closed:
            try:
                self.runtime.device_free(self.address, self.stream)
            except _errors.Error:
                pass


def _span_bytes(tensor):
    """Bytes from the tensor's first element to its last, whatever its strides."""
    if tensor.numel() == 0:
        return 0
    last = sum((d - 1) * s for d, s in zip(tensor.shape, tensor.stride()))
    return (last + 1) * tensor.element_size()


def _as_saved(tensor):
    """A tensor left on the device, as the pack hook hands it back to autograd.

    Not the tensor itself: a node that saves its own output would then hold
    the output, whose grad_fn is the node, a cycle Python's collector cannot
    see, and the whole graph would outlive the step. The unpacked tensor gets
    its autograd edge from the saved variable, not from this object."""
    return tensor.detach()


class ActivationOffload:
    """Saved activations through a tiercache runtime of their own."""

    def __init__(self, min_bytes=1 << 20, ahead=4, dram_bytes="4GiB", nvme_path=None,
                 nvme_bytes=0, pending_bytes=0, config=None):
        self.min_bytes = parse_bytes(min_bytes, "min_bytes")
        if not isinstance(ahead, int) or ahead < 0:
            raise ValueError(f"offload_activations: ahead must be an int >= 0, got {ahead!r}")
        self.ahead = ahead
        settings = {"dram_bytes": parse_bytes(dram_bytes, "dram_bytes"),
                    "activation_pending_bytes": parse_bytes(pending_bytes, "pending_bytes")}
        if nvme_path:
            settings.update(nvme_path=str(nvme_path), nvme_bytes=parse_bytes(nvme_bytes,
                                                                            "nvme_bytes"))
        settings.update(config or {})
        self.runtime = Runtime(settings)
        self.device = _memory.compute_device(self.runtime)
        self._lock = threading.Lock()
        # seq -> weak reference to its _Saved, in save order: the autograd graph
        # owns the records, so a dropped graph discards its activations.
        self._live = collections.OrderedDict()
        self._seq = 0
        self._hooks = None
        self._side = None
        self.saved = 0     # activations that went through the store
        self.skipped = 0   # saved tensors left alone (small, parameters, other devices)

    # ---- context ------------------------------------------------------------
    def __enter__(self):
        if self.runtime.closed:
            raise _errors.Error(-1, "offload_activations: the runtime is closed")
        if self._hooks is not None:
            raise _errors.InvalidArgument(-1, "offload_activations: already entered")
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        hooks, self._hooks = self._hooks, None
        hooks.__exit__(*exc)

    def stats(self):
        """The runtime's statistics as a dict (the "activations" entry counts saves)."""
        return self.runtime.stats()

    def close(self):
        """Discards what was never restored and closes the runtime."""
        with self._lock:
            live, self._live = list(self._live.values()), collections.OrderedDict()
        for ref in live:
            saved = ref()
            if saved is not None:
                self._discard(saved)
        self.runtime.close()

    # ---- hooks ----------------------------------------------------------------
    def _eligible(self, tensor):
        if tensor.device.type != self.device.type or tensor.layout != torch.strided:
            return False
        if isinstance(tensor, torch.nn.Parameter) or (tensor.is_leaf and tensor.requires_grad):
            return False
        return _span_bytes(tensor) >= max(self.min_bytes, 1)

    def _side_stream(self):
        if self._side is None:
            self._side = torch.cuda.Stream(self.device)
        return self._side

    def _pack(self, tensor):
        if self.runtime.closed or not self._eligible(tensor):
            self.skipped += 1
            return _as_saved(tensor)
        nbytes = _span_bytes(tensor)
        try:
            handle = self._save(tensor, nbytes)
        except _errors.Error:
            self.skipped += 1
            return _as_saved(tensor)  # no room, or the save failed: keep the tensor
        with self._lock:
            self._seq += 1
            saved = _Saved(self, handle, self._seq, nbytes, tensor)
            self._live[saved.seq] = weakref.ref(saved)
            self.saved += 1
        return saved

    def _save(self, tensor, nbytes):
        if self.runtime.emulated:
            # PyTorch's CPU memory is not the emulated device's memory: stage it
            # into the runtime's pool, which the store frees behind the copy.
            address = self.runtime.device_alloc(nbytes)
            # The pool may hand back memory an earlier save's copy still reads,
            # with the null stream made to wait for that copy: this host write
            # must wait too.
            self.runtime.synchronize(None)
            staged = _memory.byte_view(address, nbytes, self.device)
            staged.copy_(_memory.byte_view(tensor.data_ptr(), nbytes, self.device))
            del staged
            try:
                return self.runtime.save(address, nbytes, None)
            except _errors.Error:
                self.runtime.device_free(address)
                raise
        stream = _memory.current_stream(self.runtime, self.device)
        handle = self.runtime.save(tensor.data_ptr(), nbytes, stream, keep_device=True)
        try:
            side = self._side_stream()
            self.runtime.save_wait(handle, side.cuda_stream)
        except _errors.Error:
            self.runtime.discard(handle)
            raise
        try:
            tensor.record_stream(side)  # reused only once the side stream passed the wait
        except RuntimeError:  # memory PyTorch's caching allocator does not own
            side.synchronize()
        return handle

    def _unpack(self, saved):
        if not isinstance(saved, _Saved):
            return saved
        if saved.handle is None:
            raise _errors.Error(-2, "offload_activations: this activation was already "
                                    "restored or discarded (backward run twice without "
                                    "retain_graph?)")
        self._prefetch_before(saved)
        stream = _memory.current_stream(self.runtime, self.device)
        address = self.runtime.restore(saved.handle, stream)
        with self._lock:
            saved.handle = None
            self._live.pop(saved.seq, None)
        if self.runtime.emulated:
            self.runtime.synchronize(None)
        owner = _DeviceMemory(self.runtime, address, stream)
        flat = _memory.byte_view(address, saved.nbytes, self.device, owner)
        return _memory.typed_view(flat, 0, saved.dtype, saved.shape, saved.strides)

    def _prefetch_before(self, saved):
        """Starts the restores of the `ahead` activations saved just before `saved`."""
        if self.ahead == 0:
            return
        batch = []
        with self._lock:
            for seq in reversed(self._live):
                if len(batch) == self.ahead:
                    break
                other = self._live[seq]()
                if seq >= saved.seq or other is None or other.handle is None:
                    continue
                if not other.prefetched:
                    other.prefetched = True
                    batch.append(other.handle)
                else:
                    batch.append(None)  # counts toward the window, already issued
        batch = [h for h in batch if h is not None]
        if batch:
            self.runtime.prefetch_restore(batch)

    def _discard(self, saved):
        handle, saved.handle = saved.handle, None
        with self._lock:
            self._live.pop(saved.seq, None)
        if handle is not None and not self.runtime.closed:
            try:
                self.runtime.discard(handle)
            except _errors.Error:
                pass


def offload_activations(min_bytes=1 << 20, **options):
    """An ActivationOffload: ``with`` it around the forward; backward may follow
    outside. Options: ahead (restores in flight, 4), dram_bytes ("4GiB"),
    nvme_path and nvme_bytes (spill when DRAM is full), pending_bytes (0: no
    bound; else a tensor is kept on the device while saves still copying hold
    that many bytes: offload takes only what the link carries during the
    forward, so the step does not wait for it), config (more runtime keys)."""
    return ActivationOffload(min_bytes=min_bytes, **options)
