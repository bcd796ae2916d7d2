#!/usr/bin/env python3
"""Real engines under libtiercache_preload.so, one engine per process.

bench/preload_suite.sh runs each case twice in one session (plain and with
the library, or PyTorch's own allocator and the pluggable one) and compares
the JSON lines this script prints. Every case is deterministic in its seed,
so the two runs must agree exactly.

  preload_engines.py torch [--pluggable LIB]   a transformers Llama built from a
        config with random weights: model.to("cuda") from pageable memory,
        forward, generate 32 tokens; step time and peak memory
  preload_engines.py cupy  --pool default|none|async
  preload_engines.py jax   --allocator default|platform
"""
import argparse
import ctypes
import hashlib
import json
import os
import sys
import time


PLUGGABLE_LIBRARY = ""  # set when PyTorch loaded the library as its allocator


def preload_stats():
    """The preload library's stats when it is loaded in this process."""
    path = None
    for candidate in os.environ.get("LD_PRELOAD", "").split(":") + [PLUGGABLE_LIBRARY]:
        if candidate.endswith("libtiercache_preload.so"):
            path = candidate
    if path is None:
        return None
    lib = ctypes.CDLL(path)
    needed = ctypes.c_size_t(0)
    lib.tiercache_preload_stats_json(None, 0, ctypes.byref(needed))
    buffer = ctypes.create_string_buffer(needed.value)
    if lib.tiercache_preload_stats_json(buffer, needed.value, None) != 0:
        return None
    return json.loads(buffer.value.decode())


def static_runtime_modules(fragment):
    """Loaded shared objects whose path contains `fragment` and that carry
    their own (static) CUDA runtime: their CUDA calls cannot be interposed."""
    found = set()
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if ".so" in line and fragment in line}
    marker = b"/cudart.shm."
    for path in sorted(paths):
        try:
            with open(path, "rb") as f:
                if marker in f.read():
                    found.add(os.path.basename(path))
        except OSError:
            pass
    return sorted(found)


def digest(array_bytes):
    return hashlib.sha256(array_bytes).hexdigest()[:32]


def to_cuda_breakdown(torch, host_tensors):
    """What model.to("cuda") spends its time on, measured again on the same
    pageable tensors: device allocations alone (torch.empty, fresh memory:
    the model's copy still holds what to("cuda") took), then the copies alone
    into them, each followed by a synchronize."""
    torch.cuda.synchronize()
    start = time.perf_counter()
    targets = [torch.empty(t.shape, dtype=t.dtype, device="cuda") for t in host_tensors]
    torch.cuda.synchronize()
    alloc_s = time.perf_counter() - start
    start = time.perf_counter()
    for target, source in zip(targets, host_tensors):
        target.copy_(source)
    torch.cuda.synchronize()
    copy_s = time.perf_counter() - start
    total = sum(t.numel() * t.element_size() for t in host_tensors)
    sizes = sorted(t.numel() * t.element_size() for t in host_tensors)
    del targets
    torch.cuda.empty_cache()
    return {"tensors": len(host_tensors), "bytes": total, "alloc_s": round(alloc_s, 4),
            "copy_s": round(copy_s, 4), "copy_gbps": round(total / copy_s / 1e9, 2),
            "median_tensor_bytes": sizes[len(sizes) // 2]}


def run_torch(args):
    import torch
    if args.pluggable:
        allocator = torch.cuda.memory.CUDAPluggableAllocator(
            args.pluggable, "tiercache_torch_alloc", "tiercache_torch_free")
        torch.cuda.memory.change_current_allocator(allocator)
        global PLUGGABLE_LIBRARY
        PLUGGABLE_LIBRARY = args.pluggable
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    # Llama-7B's layer shape, 16 layers; no end-of-sequence token, so every
    # run generates exactly 32 tokens.
    config = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=args.layers,
                         num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
                         max_position_embeddings=2048, bos_token_id=1, eos_token_id=None,
                         pad_token_id=0)
    torch.manual_seed(args.seed)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).eval()
    torch.set_default_dtype(torch.float32)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    # Pageable CPU copy, then the move every engine does at load time.
    model.to("cpu")
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    host_copies = [t.detach() for t in model.state_dict().values()]  # kept for the breakdown below
    start = time.perf_counter()
    model.to("cuda")
    torch.cuda.synchronize()
    to_cuda_s = time.perf_counter() - start
    breakdown = to_cuda_breakdown(torch, host_copies)
    del host_copies
    generator = torch.Generator().manual_seed(args.seed + 1)
    ids = torch.randint(0, config.vocab_size, (1, 64), generator=generator).to("cuda")
    with torch.no_grad():
        logits = model(ids).logits.float()
        torch.cuda.synchronize()
        model.generate(ids, max_new_tokens=4, do_sample=False)  # warm-up
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = model.generate(ids, max_new_tokens=32, do_sample=False)
        torch.cuda.synchronize()
        generate_s = time.perf_counter() - start
    result = {
        "engine": "torch", "torch": torch.__version__, "transformers": transformers.__version__,
        "allocator": "pluggable" if args.pluggable else "pytorch",
        "weight_bytes": weight_bytes, "to_cuda_s": round(to_cuda_s, 4),
        "to_cuda_gbps": round(weight_bytes / to_cuda_s / 1e9, 2),
        "to_cuda_breakdown": breakdown,
        "logits_sha": digest(logits.cpu().numpy().tobytes()),
        "tokens": out[0, ids.shape[1]:].tolist(),
        "ms_per_token": round(generate_s / 32 * 1e3, 3),
    }
    if args.pluggable:
        stats = preload_stats()
        result["peak_reserved_bytes"] = stats["pool"]["peak_reserved_bytes"] if stats and stats["pool"] else None
    else:
        result["peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
        result["peak_allocated_bytes"] = torch.cuda.max_memory_allocated()
    return result


def run_cupy(args):
    import cupy
    if args.pool == "none":
        cupy.cuda.set_allocator(None)
    elif args.pool == "async":
        cupy.cuda.set_allocator(cupy.cuda.MemoryAsyncPool().malloc)
    rng = cupy.random.default_rng(args.seed)
    checksum = hashlib.sha256()
    start = time.perf_counter()
    # Pool-heavy: many short-lived arrays of drifting sizes, as an
    # array-programming workload makes them.
    for step in range(300):
        n = 1 + (step * 7919) % 2048
        a = rng.standard_normal((n, 257), dtype=cupy.float32)
        b = cupy.tanh(a) * 3 + a[::-1]
        c = (b @ b.T[:, : min(n, 64)]).sum(axis=0)
        checksum.update(cupy.asnumpy(c).tobytes())
        del a, b, c
    cupy.cuda.Device().synchronize()
    seconds = time.perf_counter() - start
    return {"engine": "cupy", "cupy": cupy.__version__, "pool": args.pool,
            "checksum": checksum.hexdigest()[:32], "seconds": round(seconds, 4),
            "static_runtime_modules": static_runtime_modules("cupy")}


def run_jax(args):
    if args.allocator == "platform":
        os.environ["XLA_PYTHON_CLIENT_ALLOCATOR"] = "platform"
    if args.deterministic:
        # XLA autotunes GEMMs by timing (a different algorithm, different
        # bits, run to run) and may reduce with atomics: both off, so two
        # runs with one seed can be compared bit for bit.
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_gpu_deterministic_ops=true --xla_gpu_autotune_level=0").strip()
    import jax
    import jax.numpy as jnp
    key = jax.random.PRNGKey(args.seed)
    checksum = hashlib.sha256()

    @jax.jit
    def step(x):
        y = jnp.tanh(x @ x.T) * 0.5
        return y.sum(axis=0), y[:128, :128]

    start = time.perf_counter()
    magnitude = 0.0
    for i in range(40):
        # Eight shapes in turn: eight compilations, and buffers of drifting sizes.
        n = 512 + (i % 8) * 192
        key, sub = jax.random.split(key)
        x = jax.random.normal(sub, (n, 384), dtype=jnp.float32)
        s, block = step(x)
        s, block = jax.device_get(s), jax.device_get(block)
        checksum.update(s.tobytes())
        checksum.update(block.tobytes())
        magnitude += float(abs(s).sum()) + float(abs(block).sum())
    seconds = time.perf_counter() - start
    return {"engine": "jax", "jax": jax.__version__, "allocator": args.allocator,
            "deterministic": args.deterministic, "devices": [str(d) for d in jax.devices()],
            "checksum": checksum.hexdigest()[:32], "magnitude": magnitude,
            "seconds": round(seconds, 4),
            "static_runtime_modules": static_runtime_modules("jax")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("engine", choices=["torch", "cupy", "jax"])
    parser.add_argument("--pluggable", default="")
    parser.add_argument("--pool", default="default", choices=["default", "none", "async"])
    parser.add_argument("--allocator", default="default", choices=["default", "platform"])
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--deterministic", action="store_true",
                        help="jax: XLA's deterministic ops, no autotuning")
    args = parser.parse_args()
    result = {"torch": run_torch, "cupy": run_cupy, "jax": run_jax}[args.engine](args)
    stats = preload_stats()
    if stats is not None:
        result["preload_calls"] = {k: v for k, v in stats["calls"].items()
                                   if v["served"] or v["passed_through"]}
        result["preload_copies"] = stats["copies"]
        result["preload_pool_active"] = stats["pool_active"]
        result["preload_reason"] = stats["pass_through_reason"]
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)


if __name__ == "__main__":
    sys.exit(main())
