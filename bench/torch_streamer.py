"""The peers and the yardsticks of the PyTorch benchmark, written out in full.

- ``DoubleBufferStreamer``: what a careful engineer writes by hand: each
  layer's weights packed in one pinned host buffer, two device buffers, the
  next layer's copy on a copy stream while the current layer computes, events
  both ways. Module hooks point the parameters at the device buffer.
- ``copy_peak``: pinned host-to-device bandwidth, 64 MiB chunks, best of 5.
- ``disk_rate``: O_DIRECT sequential 16 MiB reads of a new file on the given
  disk; ``direct_read_rate`` the same reads of an existing file.
- ``host_memory``: this process's resident set (pinned pages included).
"""
import mmap
import os
import time

import torch

ALIGNMENT = 256


def _pack(layer):
    slots, offset = [], 0
    for p in layer.parameters():
        nbytes = p.numel() * p.element_size()
        slots.append((p, offset, nbytes))
        offset += -(-nbytes // ALIGNMENT) * ALIGNMENT
    return slots, offset


def _view(flat, offset, p):
    nbytes = p.numel() * p.element_size()
    return flat[offset:offset + nbytes].view(p.dtype).view(p.shape)


class DoubleBufferStreamer:
    """Streams `layers` (a cyclic order) through two device buffers."""

    def __init__(self, layers, device):
        self.layers, self.device = layers, device
        self.index = {id(layer): i for i, layer in enumerate(layers)}
        self.packs, self.host, self.home = [], [], []
        for layer in layers:
            slots, nbytes = _pack(layer)
            host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
            for p, offset, _ in slots:
                _view(host, offset, p).copy_(p.detach())
                self.home.append((p, p.device))
            self.packs.append(slots)
            self.host.append(host)
        largest = max(h.numel() for h in self.host)
        self.buffers = [torch.empty(largest, dtype=torch.uint8, device=device) for _ in range(2)]
        self.copy_stream = torch.cuda.Stream(device)
        self.loaded = [torch.cuda.Event() for _ in range(2)]
        self.free = [torch.cuda.Event() for _ in range(2)]
        self.where = {}  # layer index -> buffer holding (or receiving) it
        self.scalar = {}
        for slots in self.packs:
            for p, _, _ in slots:
                p.data = self._placeholder(p)
        self.hooks = []
        for layer in layers:
            self.hooks.append(layer.register_forward_pre_hook(self._pre))
            self.hooks.append(layer.register_forward_hook(self._post))
        self.bytes = sum(h.numel() for h in self.host)

    def _placeholder(self, p):
        scalar = self.scalar.setdefault(p.dtype, torch.zeros((), dtype=p.dtype,
                                                             device=self.device))
        return scalar.expand(p.shape)

    def _load(self, i, buffer):
        with torch.cuda.stream(self.copy_stream):
            self.copy_stream.wait_event(self.free[buffer])  # its last reader has run
            n = self.host[i].numel()
            self.buffers[buffer][:n].copy_(self.host[i], non_blocking=True)
            self.loaded[buffer].record(self.copy_stream)
        self.where[i] = buffer

    def _pre(self, layer, args):
        i = self.index[id(layer)]
        if i not in self.where:
            self._load(i, 0 if 1 in self.where.values() else 1)
        buffer = self.where[i]
        compute = torch.cuda.current_stream(self.device)
        compute.wait_event(self.loaded[buffer])
        for p, offset, _ in self.packs[i]:
            p.data = _view(self.buffers[buffer], offset, p)
        following = (i + 1) % len(self.layers)
        if following not in self.where:
            self._load(following, 1 - buffer)

    def _post(self, layer, args, output):
        i = self.index[id(layer)]
        buffer = self.where.pop(i)
        self.free[buffer].record(torch.cuda.current_stream(self.device))
        for p, _, _ in self.packs[i]:
            p.data = self._placeholder(p)

    def close(self):
        for hook in self.hooks:
            hook.remove()
        torch.cuda.synchronize(self.device)
        for i, slots in enumerate(self.packs):
            for p, offset, _ in slots:
                p.data = _view(self.host[i], offset, p).to(self.device)
        self.host, self.buffers = [], []


def copy_peak(device, nbytes=1 << 30, chunk=64 << 20, repeats=5):
    """Pinned host -> device bytes per second, best of `repeats`."""
    src = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    dst = torch.empty(nbytes, dtype=torch.uint8, device=device)
    best = 0.0
    for _ in range(repeats):
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        for offset in range(0, nbytes, chunk):
            dst[offset:offset + chunk].copy_(src[offset:offset + chunk], non_blocking=True)
        torch.cuda.synchronize(device)
        best = max(best, nbytes / (time.perf_counter() - start))
    return best


def disk_rate(directory, nbytes=2 << 30, chunk=16 << 20):
    """O_DIRECT sequential read rate of a new file in `directory` (bytes/s)."""
    path = os.path.join(directory, "disk_rate.dat")
    block = mmap.mmap(-1, chunk)  # page aligned, as O_DIRECT needs
    block.write(os.urandom(1 << 20) * (chunk >> 20))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for offset in range(0, nbytes, chunk):
            os.pwrite(fd, block, offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        rate, _ = direct_read_rate(path, nbytes, chunk)
    finally:
        os.unlink(path)
    return rate


def direct_read_rate(path, limit, chunk=16 << 20):
    """Sequential O_DIRECT reads of `chunk` bytes from the start of `path`, up
    to `limit` bytes: (bytes per second, bytes read)."""
    block = mmap.mmap(-1, chunk)  # page aligned, as O_DIRECT needs
    nbytes = min(os.path.getsize(path) // chunk * chunk, limit)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECT", 0))
    try:
        start = time.perf_counter()
        done = 0
        while done < nbytes:
            got = os.preadv(fd, [block], done)
            if got <= 0:
                break
            done += got
        seconds = time.perf_counter() - start
    finally:
        os.close(fd)
    return done / seconds, done


def host_memory():
    """Resident bytes of this process (pinned host memory is resident too)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
