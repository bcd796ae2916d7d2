"""Weight offload: a model's layers as tiercache blocks, acquired by module hooks.

``offload(model, gpu_budget, home)`` packs each chosen module's parameters
into one block homed in DRAM, PMEM or NVMe, releases the original copies
(device or host) and installs two hooks per module: the forward pre-hook
acquires the block on PyTorch's current stream and points the parameters at
views of the returned memory (no copy); the forward hook releases it on the
same stream. The runtime's prefetcher sees the acquires and learns the order;
nothing here schedules transfers.

Several forwards may be in flight at once, on different streams or threads:
each acquire/release pairs with its own stream, and the parameters point at
the block while any forward holds it (the block cannot move while pinned).
Weight offload is for inference: run under ``torch.no_grad()`` or
``torch.inference_mode()``.

Thread safety: hooks may run on any thread; ``close()`` must not race with a
forward of the model.
"""
import ctypes
import threading
import time

import torch

from .. import _errors
from ..runtime import Runtime
from . import _layers, _memory
from ._sizes import parse_bytes

__all__ = ["offload", "OffloadHandle"]

_HOMES = ("dram", "pmem", "nvme")
_COMPRESSIONS = ("off", "bf16", "auto")
_MARK = "_tiercache_offload"
_ROOM_WAIT_S = 30.0  # how long an acquire waits for other forwards to release room


def _fail(message):
    return _errors.InvalidArgument(-1, f"offload: {message}")


class _Entry:
    """One module's block, and who holds it now."""

    def __init__(self, name, module, slots, nbytes):
        self.name, self.module, self.slots, self.nbytes = name, module, slots, nbytes
        self.block = None
        self.lock = threading.Lock()
        self.holders = 0        # forwards between pre-hook and hook
        self.address = None     # the block's device address while held
        self.views = None       # (address, [tensor per slot]) of the last acquire
        self.streams = {}       # thread id -> streams of its open forwards (a stack)
        self.hooks = []


class OffloadHandle:
    """What ``offload`` returns: stats(), close(), the runtime and the blocks."""

    def __init__(self, model, runtime, entries, device):
        self.model, self.runtime, self.device = model, runtime, device
        self._entries = entries
        self._placeholders = {}
        self.closed = False

    # ---- public ----------------------------------------------------------
    @property
    def blocks(self):
        """{module name: block id}."""
        return {e.name: e.block for e in self._entries}

    @property
    def weight_bytes(self):
        return sum(e.nbytes for e in self._entries)

    def stats(self):
        """The runtime's statistics as a dict (tiers, blocks, allocator, ...)."""
        self._check_open("stats")
        return self.runtime.stats()

    def close(self):
        """Puts every parameter back where it was (device or host), removes the
        hooks and closes the runtime. The model stays usable."""
        if self.closed:
            return
        held = [e.name for e in self._entries if e.holders]
        if held:
            raise _errors.Busy(-9, f"offload.close: {held[0]} is inside a forward")
        stream = _memory.current_stream(self.runtime, self.device)
        for entry in self._entries:
            address = self.runtime.acquire(entry.block, stream)
            if self.runtime.emulated:
                self.runtime.synchronize(stream)
            flat = _memory.byte_view(address, entry.nbytes, self.device)
            restored = []
            for slot in entry.slots:
                copy = torch.empty(slot.shape, dtype=slot.dtype, device=slot.home_device)
                copy.copy_(_memory.typed_view(flat, slot.offset, slot.dtype, slot.shape))
                restored.append(copy)
            del flat
            self.runtime.release(entry.block, stream)
            for slot, copy in zip(entry.slots, restored):
                slot.parameter.data = copy
            entry.views = None
            for hook in entry.hooks:
                hook.remove()
            entry.hooks.clear()
            _unmark(entry.module)
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()
        _unmark(self.model)
        self.closed = True
        self.runtime.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- hooks -------------------------------------------------------------
    def _check_open(self, what):
        if self.closed:
            raise _errors.Error(-1, f"offload.{what}: the handle is closed")

    def _acquire(self, entry):
        if self.runtime.closed:
            raise _errors.Error(-1, f"offload: {entry.name}: the runtime is closed")
        if torch.is_grad_enabled() and any(s.parameter.requires_grad for s in entry.slots):
            raise _fail(f"{entry.name}: offloaded weights are for inference; run the model "
                        "under torch.no_grad() or torch.inference_mode()")
        stream = _memory.current_stream(self.runtime, self.device)
        address = self._acquire_when_room(entry, stream)
        if self.runtime.emulated:
            self.runtime.synchronize(stream)  # CPU "kernels" read at once, not in stream order
        with entry.lock:
            entry.streams.setdefault(threading.get_ident(), []).append(stream)
            entry.holders += 1
            if entry.holders > 1:
                if address != entry.address:  # pinned blocks never move
                    raise _errors.Error(-12, f"offload: {entry.name} moved while held")
                return
            entry.address = address
            if entry.views is None or entry.views[0] != address:
                # Views of the block where it is now; kept for the next acquire
                # that finds it at the same address (a resident block: no work).
                flat = _memory.byte_view(address, entry.nbytes, self.device)
                entry.views = (address, [_memory.typed_view(flat, slot.offset, slot.dtype,
                                                            slot.shape) for slot in entry.slots])
            for slot, view in zip(entry.slots, entry.views[1]):
                slot.parameter.data = view

    def _acquire_when_room(self, entry, stream):
        """Acquires; while other forwards hold the whole budget, waits for a release."""
        deadline = time.monotonic() + _ROOM_WAIT_S
        pause = 1e-4
        while True:
            try:
                return self.runtime.acquire(entry.block, stream)
            except _errors.OutOfSpace as e:
                if time.monotonic() > deadline:
                    raise _errors.OutOfSpace(e.status, f"offload: {entry.name}: {e} (for "
                                             f"{_ROOM_WAIT_S:.0f} s: more forwards in flight "
                                             "than the gpu_budget has blocks for)") from e
                time.sleep(pause)
                pause = min(pause * 2, 0.01)

    def _release(self, entry):
        with entry.lock:
            if entry.holders == 0:
                return
            mine = entry.streams.get(threading.get_ident())
            if not mine:
                return  # this thread's forward never acquired (its pre-hook failed)
            stream = mine.pop()
            entry.holders -= 1
            if entry.holders == 0:
                entry.address = None
                for slot in entry.slots:
                    slot.parameter.data = self._placeholder(slot)
        self.runtime.release(entry.block, stream)

    def _placeholder(self, slot):
        """A tensor of the parameter's shape over one element: holds no memory."""
        return self._placeholder_of(slot.dtype, slot.shape)

    def _placeholder_of(self, dtype, shape):
        scalar = self._placeholders.get(dtype)
        if scalar is None:
            scalar = torch.zeros((), dtype=dtype, device=self.device)
            self._placeholders[dtype] = scalar
        return scalar.expand(shape)

    def _install(self, entry):
        def pre_hook(module, args):
            self._acquire(entry)

        def hook(module, args, output):
            self._release(entry)

        entry.hooks.append(entry.module.register_forward_pre_hook(pre_hook))
        try:
            entry.hooks.append(entry.module.register_forward_hook(hook, always_call=True))
        except TypeError:  # PyTorch < 2.1: no always_call
            entry.hooks.append(entry.module.register_forward_hook(hook))


def _unmark(module):
    if hasattr(module, _MARK):
        delattr(module, _MARK)


def _expected_device():
    import os
    if os.environ.get("TIERCACHE_DEVICE") == "emulated" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def _check_devices(model, chosen, device):
    """Offloaded parameters may be on the host or `device`; everything else on `device`."""
    inside = set()
    for name, module in chosen:
        for pname, p in module.named_parameters():
            inside.add(id(p))
            if p.device.type not in ("cpu", device.type) or (
                    p.device.type == device.type == "cuda" and p.device != device):
                raise _fail(f"{name}.{pname} is on {p.device}; expected cpu or {device}")
    for pname, p in list(model.named_parameters()) + list(model.named_buffers()):
        if id(p) in inside:
            continue
        in_chosen = any(pname.startswith(name + ".") for name, _ in chosen)
        if in_chosen and p.device.type == "cpu":
            continue  # a chosen module's buffer: moved to the device below
        if p.device != device and not (device.type == "cpu" and p.device.type == "cpu"):
            raise _fail(f"{pname} is on {p.device}, but the model runs on {device}: move "
                        "the modules that are not offloaded there first")


def encoded_ring_bytes(user, chunk):
    """Device memory the encoded uploads' ring takes from the pool (docs/codec.md)."""
    return 3 * max(chunk, 1 << 20) if user.get("compression", "off") != "off" else 0


def _runtime_config(home, gpu_budget, largest, total, count, options, user):
    chunk = parse_bytes(user.get("chunk_bytes", 16 << 20), "chunk_bytes")
    ring = int(user.get("staging_buffers", 4)) * chunk
    slack = count * 4096 + (1 << 20)
    pool = gpu_budget + largest + encoded_ring_bytes(user, chunk)
    config = {"gpu_cache_bytes": gpu_budget, "gpu_budget_bytes": pool}
    if home == "dram":
        config["dram_bytes"] = total + ring + slack
    else:
        path = options.get(f"{home}_path")
        if not path:
            raise _fail(f"home={home!r} needs {home}_path= (a file or directory)")
        config[f"{home}_path"] = str(path)
        config[f"{home}_bytes"] = total + slack + (1 << 20)
        config["dram_bytes"] = ring + parse_bytes(options.get("dram_room", 0), "dram_room")
    config.update(user)
    return config


def offload(model, gpu_budget, home="dram", modules=None, config=None, checkpoint=None,
            compression=None, **options):
    """Offloads the weights of `modules` (default: the model's decoder layers).

    gpu_budget: bytes of GPU memory for cached blocks (int or "8GiB"); at least
    the largest block. home: "dram", "pmem" or "nvme" (then ``pmem_path=`` or
    ``nvme_path=``; ``dram_room=`` adds DRAM for copies of NVMe/PMEM blocks).
    modules: [module] or [(name, module)]. config: more runtime keys.
    compression: "off", "bf16" (each layer's block stored in its home in the
    lossless bf16 codec, decoded on the device: fewer bytes over every link)
    or "auto" (bf16 where it saves at least 10%); default: the runtime's
    ``compression`` key (off).
    checkpoint: a safetensors file, index or directory: the model may then be
    built without weights (meta device), its layers become blocks homed on
    the checkpoint's files and every other parameter is read from it to the
    device (see ``_checkpoint``; options ``pmem_path=``/``pmem_bytes=`` keep
    blocks in PMEM for a warm restart, encoded there with ``compression=``
    bf16/auto (the files are read as they are), ``prefetch=False`` waits for the first
    forward, ``group_prefix=`` as tiercache_register_safetensors; ``home``
    does not apply).
    Returns an OffloadHandle. On any error the model is left as it was.
    """
    config = dict(config or {})
    if compression is not None:
        if compression not in _COMPRESSIONS:
            raise _fail(f"compression must be one of {', '.join(_COMPRESSIONS)}, got {compression!r}")
        if config.setdefault("compression", compression) != compression:
            raise _fail(f"compression={compression!r} disagrees with config's "
                        f"compression={config['compression']!r}")
    if checkpoint is not None:
        if home != "dram":
            raise _fail("home= does not apply with checkpoint= (the checkpoint is the home)")
        if config.get("compression", "off") != "off" and not options.get("pmem_path"):
            raise _fail("compression= with checkpoint= applies to the PMEM copies (pmem_path=): "
                        "the checkpoint's files are read as they are")
        from ._checkpoint import offload_checkpoint
        return offload_checkpoint(model, checkpoint, gpu_budget, modules, config, **options)
    if not isinstance(model, torch.nn.Module):
        raise _fail(f"expected a torch.nn.Module, got {type(model).__name__}")
    if home not in _HOMES:
        raise _fail(f"home must be one of {', '.join(_HOMES)}, got {home!r}")
    budget = parse_bytes(gpu_budget, "gpu_budget")
    if modules is None:
        chosen = _layers.decoder_layers(model)
    else:
        names = {id(m): n for n, m in model.named_modules()}
        chosen = [m if isinstance(m, tuple) else (names.get(id(m), f"module{i}"), m)
                  for i, m in enumerate(modules)]
    for target in [model] + [m for _, m in chosen]:
        if getattr(target, _MARK, None) is not None:
            raise _fail(f"{'the model' if target is model else 'a module'} is already "
                        "offloaded; close its handle first")
    if not chosen:
        raise _fail("no modules to offload")
    device = _expected_device()
    _check_devices(model, chosen, device)
    entries, seen = [], set()
    for name, module in chosen:
        slots, nbytes = _layers.pack_layout(module)
        if nbytes == 0:
            raise _fail(f"{name} has no parameters")
        for slot in slots:
            if id(slot.parameter) in seen:
                raise _fail(f"{name}.{slot.name} is shared with another offloaded module")
            seen.add(id(slot.parameter))
        entries.append(_Entry(name, module, slots, nbytes))
    largest = max(entries, key=lambda e: e.nbytes)
    if budget < largest.nbytes:
        raise _fail(f"gpu_budget {budget} bytes is smaller than the largest block, "
                    f"{largest.name} ({largest.nbytes} bytes)")
    total = sum(e.nbytes for e in entries)
    runtime = Runtime(_runtime_config(home, budget, largest.nbytes, total, len(entries), options,
                                      config))
    try:
        if runtime.emulated != (device.type == "cpu"):
            raise _fail(f"the runtime's device ({'emulated' if runtime.emulated else 'cuda'}) "
                        f"does not match PyTorch's ({device})")
        for entry in entries:
            entry.block = _register(runtime, entry, home)
    except BaseException:
        runtime.close()
        raise
    handle = OffloadHandle(model, runtime, entries, device)
    _move_buffers(chosen, device)
    for entry in entries:  # only now is the model changed
        for slot in entry.slots:
            slot.parameter.data = handle._placeholder(slot)
        handle._install(entry)
        setattr(entry.module, _MARK, handle)
    setattr(model, _MARK, handle)
    _trim_host_heap()
    return handle


def _register(runtime, entry, home):
    staging = torch.zeros(entry.nbytes, dtype=torch.uint8)
    for slot in entry.slots:
        target = _memory.typed_view(staging, slot.offset, slot.dtype, slot.shape)
        target.copy_(slot.parameter.detach())
    return runtime.register(staging.data_ptr(), entry.nbytes, home=home, name=entry.name)


def _move_buffers(chosen, device):
    for _, module in chosen:
        for owner in module.modules():
            for key, buffer in owner._buffers.items():
                if buffer is not None and buffer.device != device:
                    owner._buffers[key] = buffer.to(device)


def _trim_host_heap():
    """Hands the freed host copies back to the system (glibc keeps them otherwise)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
