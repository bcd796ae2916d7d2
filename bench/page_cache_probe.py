"""How fast can a file in the page cache reach the GPU? The ceilings a warm checkpoint read works against.

One process, one file written by the script (so it is in the page cache), the same run:
- pinned host->device copy peak (one pinned buffer, cudaMemcpyAsync);
- page cache -> pinned buffer with preadv on 1..16 threads (what the file tier's pread pool does);
- the same threads while the GPU copies the buffer (the reads and the DMA share host memory);
- the file mapped read-only and registered with cudaHostRegister(ReadOnly): the registration time per GB
  and the rate the GPU then reads the page cache at by DMA, with no host copy at all.

  page_cache_probe.py --dir /var/tmp/probe --gib 4 [--json out.json]
"""
import argparse
import concurrent.futures as cf
import ctypes
import json
import mmap
import os
import time

import torch

import torch_streamer

MiB = 1 << 20


def log(msg):
    print(msg, flush=True)


def write_file(path, nbytes):
    chunk = os.urandom(64 * MiB)
    with open(path, "wb") as f:
        for _ in range(nbytes // len(chunk)):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())


def pinned(nbytes):
    return torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)


def pread_rate(fd, size, buf, threads, piece):
    """Reads [0, size) of fd into buf (wrapping) in pieces on `threads` threads; returns bytes/s."""
    view = memoryview(buf.numpy())
    cap = buf.numel()

    def work(start):
        off = start
        while off < size:
            n = min(piece, size - off)
            dst = off % cap
            os.preadv(fd, [view[dst:dst + n]], off)
            off += piece * threads

    t = time.perf_counter()
    with cf.ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, [i * piece for i in range(threads)]))
    return size / (time.perf_counter() - t)


def load_cudart():
    """The cudart this process already runs (torch's), for the calls torch does not wrap."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "libcudart.so" in os.path.basename(path):
                return ctypes.CDLL(path)
    return ctypes.CDLL("libcudart.so")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default="/var/tmp/page-cache-probe")
    ap.add_argument("--gib", type=int, default=4)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, "probe.bin")
    size = args.gib << 30
    if not os.path.exists(path) or os.path.getsize(path) != size:
        t = time.perf_counter()
        write_file(path, size)
        log(f"wrote {size >> 30} GiB in {time.perf_counter() - t:.1f} s")
    fd = os.open(path, os.O_RDONLY)
    # Warm it: read once through the page cache.
    buf = pinned(256 * MiB)
    pread_rate(fd, size, buf, 8, 4 * MiB)
    results = {"file_bytes": size}
    peak = torch_streamer.copy_peak(torch.device("cuda"))  # the peer every bench measures
    results["pinned_peak_gbs"] = peak / 1e9
    log(f"pinned host->device peak: {peak / 1e9:.2f} GB/s")

    rates = {}
    for piece in (1 * MiB, 4 * MiB):
        for threads in (1, 2, 4, 8, 16):
            r = pread_rate(fd, size, buf, threads, piece)
            rates[f"{threads}x{piece // MiB}MiB"] = r / 1e9
            log(f"page cache -> pinned, preadv {threads:2d} threads x {piece // MiB} MiB: {r / 1e9:6.2f} GB/s")
    results["pread_gbs"] = rates

    # Reads while the GPU copies: a copy stream loops over the buffer meanwhile.
    stream = torch.cuda.Stream()
    big = torch.empty(size // 4, dtype=torch.uint8, device="cuda")
    with torch.cuda.stream(stream):
        for i in range(size // 4 // (256 * MiB)):
            big[i * 256 * MiB:(i + 1) * 256 * MiB].copy_(buf, non_blocking=True)
    r = pread_rate(fd, size, buf, 16, 4 * MiB)
    stream.synchronize()
    results["pread_16x4_during_dma_gbs"] = r / 1e9
    log(f"page cache -> pinned, 16 x 4 MiB while DMA runs: {r / 1e9:.2f} GB/s")
    del big

    # Register the page cache itself for DMA.
    cudart = torch.cuda.cudart()
    rt = load_cudart()
    mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
    libc = ctypes.CDLL(None)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    PROT_READ, MAP_SHARED, MAP_POPULATE = 1, 1, 0x8000
    for populate in (0, MAP_POPULATE):
        t = time.perf_counter()
        addr = libc.mmap(None, size, PROT_READ, MAP_SHARED | populate, fd, 0)
        mapped = time.perf_counter() - t
        if addr in (None, ctypes.c_void_p(-1).value):
            log("mmap failed")
            break
        t = time.perf_counter()
        READ_ONLY = 8
        err = cudart.cudaHostRegister(addr, size, READ_ONLY)
        registered = time.perf_counter() - t
        key = "populate" if populate else "lazy"
        log(f"mmap ({key}) {mapped * 1e3:.1f} ms; cudaHostRegister(ReadOnly) of {size >> 30} GiB: "
            f"{registered * 1e3:.1f} ms ({size / registered / 1e9:.2f} GB/s), error {int(err)}")
        entry = {"mmap_ms": mapped * 1e3, "register_ms": registered * 1e3, "error": int(err)}
        if int(err) == 0:
            dst = torch.empty(size, dtype=torch.uint8, device="cuda")
            torch.cuda.synchronize()
            t = time.perf_counter()
            e = rt.cudaMemcpy(ctypes.c_void_p(dst.data_ptr()), ctypes.c_void_p(addr), ctypes.c_size_t(size), 1)
            torch.cuda.synchronize()
            dma = size / (time.perf_counter() - t)
            ok = int(e) == 0
            check = torch.frombuffer(mm, dtype=torch.uint8, count=64 * MiB) if ok else None
            same = ok and bool(torch.equal(dst[:64 * MiB].cpu(), check))
            log(f"  DMA straight from the registered page cache: {dma / 1e9:.2f} GB/s "
                f"({dma / peak:.2f} x peak), error {int(e)}, bytes identical {same}")
            entry.update({"dma_gbs": dma / 1e9, "dma_over_peak": dma / peak, "identical": same})
            t = time.perf_counter()
            cudart.cudaHostUnregister(addr)
            entry["unregister_ms"] = (time.perf_counter() - t) * 1e3
            del dst
        results[f"register_{key}"] = entry
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        libc.munmap(addr, size)
    # Registration per 64 MiB piece on 8 threads: the cost a loader would pay per chunk.
    addr = libc.mmap(None, size, PROT_READ, MAP_SHARED, fd, 0)
    piece = 64 * MiB

    def reg(i):
        return int(cudart.cudaHostRegister(addr + i * piece, piece, 8))

    t = time.perf_counter()
    with cf.ThreadPoolExecutor(8) as pool:
        errs = list(pool.map(reg, range(size // piece)))
    seconds = time.perf_counter() - t
    log(f"cudaHostRegister of 64 MiB pieces on 8 threads: {size / seconds / 1e9:.2f} GB/s, errors {set(errs)}")
    results["register_pieces_8_threads_gbs"] = size / seconds / 1e9
    for i in range(size // piece):
        cudart.cudaHostUnregister(addr + i * piece)
    # Register and copy in a pipeline: pieces registered on `threads` threads, each copied
    # to the GPU as soon as it is registered: what a loader reading in place would get.
    dst = torch.empty(size, dtype=torch.uint8, device="cuda")
    for threads in (4, 8, 16):
        for piece in (16 * MiB, 64 * MiB):
            n = size // piece
            torch.cuda.synchronize()
            t = time.perf_counter()
            with cf.ThreadPoolExecutor(threads) as pool:
                futures = [pool.submit(lambda i=i: int(cudart.cudaHostRegister(addr + i * piece, piece, 8)))
                           for i in range(n)]
                for i, fu in enumerate(futures):
                    if fu.result() != 0:
                        raise RuntimeError("cudaHostRegister failed")
                    rt.cudaMemcpyAsync(ctypes.c_void_p(dst.data_ptr() + i * piece),
                                       ctypes.c_void_p(addr + i * piece), ctypes.c_size_t(piece), 1, None)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - t
            same = bool(torch.equal(dst[-MiB:].cpu(), torch.frombuffer(mm, dtype=torch.uint8, count=MiB,
                                                                       offset=size - MiB)))
            log(f"register + DMA pipeline, {threads} threads x {piece // MiB} MiB pieces: "
                f"{size / seconds / 1e9:.2f} GB/s ({size / seconds / peak:.2f} x peak), identical {same}")
            results[f"pipeline_{threads}x{piece // MiB}MiB_gbs"] = size / seconds / 1e9
            for i in range(n):
                cudart.cudaHostUnregister(addr + i * piece)
    del dst
    mm.close()
    os.close(fd)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
