#!/usr/bin/env python3
"""Activation offload on a training step: tiercache against save_on_cpu, one process.

    python3 bench/torch_activation_bench.py [--quick] [--out DIR]

Four Llama-shaped decoder layers (hidden 4096, intermediate 11008, 32 heads,
8 KV heads, bf16, trainable) run forward + backward on batch x sequence
tokens whose saved activations exceed 4 GB. In the same run: no offload (the
reference), ``tiercache.torch.offload_activations``, and PyTorch's
``torch.autograd.graph.save_on_cpu(pin_memory=True)``. Per case: step time
(median), its overhead over the reference, peak GPU memory of activations
(torch's peak over the step minus what was allocated before it, plus
tiercache's pool for restored activations) and its reduction, and whether
every gradient is bit-identical to the reference's. ``--model tiny`` on a
machine without a GPU only checks the plumbing.
"""
import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import torch  # noqa: E402

import tiercache.torch as tct  # noqa: E402

GB = 1e9


def _llama_layers(device, layers, max_positions=8192):
    import transformers
    config = transformers.LlamaConfig(hidden_size=4096, intermediate_size=11008,
                                      num_attention_heads=32, num_key_value_heads=8,
                                      num_hidden_layers=layers, vocab_size=256,
                                      max_position_embeddings=max_positions)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = transformers.LlamaModel(config)
    finally:
        torch.set_default_dtype(default)
    model = model.to(torch.bfloat16).train()

    def forward(x):
        return model(inputs_embeds=x, use_cache=False).last_hidden_state
    return model, forward, 4096


def _tiny_layers(device, layers):
    sys.path.insert(0, os.path.join(HERE, "..", "python", "tests"))
    from tiny_decoder import make_model
    model = make_model(dim=128, heads=4, kv_heads=2, hidden=352, layers=layers).to(device).train()

    def forward(x):
        for block in model.trunk.blocks:
            x = block(x)
        return x
    return model, forward, 128


class _Sync:
    def __init__(self, device):
        self.device = device

    def __call__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def _activation_bytes(forward, x, min_bytes):
    total = [0]

    def pack(t):
        n = t.numel() * t.element_size()
        if n >= min_bytes and not (t.is_leaf and t.requires_grad):
            total[0] += n
        return t.detach()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward(x)
    del out
    return total[0]


def run(quick=False, cuda=True, model_kind=None, repeats=None, batch=None, sequence=None,
        bounds=None):
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    kind = model_kind or ("llama" if cuda else "tiny")
    default_batch, default_sequence = (8, 2048) if kind == "llama" else (4, 64)
    if quick and kind == "llama":
        default_batch = 4
    batch, sequence = batch or default_batch, sequence or default_sequence
    if kind == "llama":
        model, forward, hidden = _llama_layers(device, 4, max(8192, sequence))
    else:
        model, forward, hidden = _tiny_layers(device, 4)
    repeats = repeats or (2 if quick else 3)
    sync = _Sync(device)
    gen = torch.Generator(device).manual_seed(11)
    x = torch.randn(batch, sequence, hidden, device=device, dtype=next(model.parameters()).dtype,
                    generator=gen)
    min_bytes = 1 << 20 if kind == "llama" else 4096
    activation_bytes = _activation_bytes(forward, x, min_bytes)
    print(f"activation step: {batch} x {sequence} tokens, {activation_bytes / GB:.2f} GB of saved "
          f"activations >= {min_bytes} bytes", flush=True)

    def step(context):
        model.zero_grad(set_to_none=True)
        sync()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
        start = time.perf_counter()
        with context():
            loss = forward(x).float().pow(2).mean()
        loss.backward()
        sync()
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(device) - before if device.type == "cuda" else 0
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        return seconds, peak, grads

    def measure(name, context, pool=None):
        times, peaks, grads = [], [], None
        for _ in range(repeats + 1):  # the first is a warm-up
            seconds, peak, grads = step(context)
            times.append(seconds)
            peaks.append(peak)
        case = {"step_s": statistics.median(times[1:]), "activation_peak_bytes": max(peaks[1:])}
        if pool is not None:
            stats = pool()
            case["pool_peak_bytes"] = stats["allocator"]["peak_allocated_bytes"]
            case["activations"] = stats["activations"]
            case["activation_peak_bytes"] += case["pool_peak_bytes"]
        print(f"  {name:<24} step {case['step_s'] * 1e3:8.1f} ms  activations peak "
              f"{case['activation_peak_bytes'] / GB:6.2f} GB", flush=True)
        return case, grads

    import contextlib
    results = {"batch": batch, "sequence": sequence, "activation_bytes": activation_bytes}
    reference, want = measure("no offload", contextlib.nullcontext)
    _, again = measure("no offload (again)", contextlib.nullcontext)
    results["reference_deterministic"] = all(torch.equal(want[n], again[n]) for n in want)
    results["none"] = reference

    offload = tct.offload_activations(min_bytes=min_bytes,
                                      dram_bytes=int(activation_bytes * 1.1) + (128 << 20))
    case, grads = measure("tiercache", lambda: offload, pool=offload.stats)
    case["gradients_identical"] = all(torch.equal(want[n], grads[n]) for n in want)
    offload.close()
    results["tiercache"] = case
    # The same with the copies in flight bounded: the offload takes what the
    # link carries while the forward computes, the rest stays on the device.
    names = ["tiercache", "save_on_cpu"]
    for bound in (bounds or ((128 << 20, 512 << 20) if kind == "llama" else (1,))):
        name = f"tiercache pending<={bound >> 20}MiB" if bound >= (1 << 20) else "tiercache pending<=1B"
        offload = tct.offload_activations(min_bytes=min_bytes, pending_bytes=bound,
                                          dram_bytes=int(activation_bytes * 1.1) + (128 << 20))
        case, grads = measure(name, lambda: offload, pool=offload.stats)
        case["gradients_identical"] = all(torch.equal(want[n], grads[n]) for n in want)
        offload.close()
        results[name] = case
        names.append(name)

    if device.type == "cuda":
        case, grads = measure("save_on_cpu(pin_memory)",
                              lambda: torch.autograd.graph.save_on_cpu(pin_memory=True))
        case["gradients_identical"] = all(torch.equal(want[n], grads[n]) for n in want)
        results["save_on_cpu"] = case
    for name in names:
        if name in results and reference["activation_peak_bytes"]:
            c = results[name]
            c["overhead"] = c["step_s"] / reference["step_s"] - 1
            c["peak_reduction"] = 1 - c["activation_peak_bytes"] / reference["activation_peak_bytes"]
            print(f"  {name}: overhead {c['overhead'] * 100:+.1f}%, activation peak "
                  f"-{c['peak_reduction'] * 100:.1f}%, gradients "
                  f"{'identical' if c['gradients_identical'] else 'DIFFER'}", flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", choices=("llama", "tiny"), default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--batch", type=int, default=None, help="default 8 (llama), 4 (tiny)")
    parser.add_argument("--sequence", type=int, default=None,
                        help="tokens per sequence; default 2048 (llama), 64 (tiny). Long sequences "
                        "give attention more compute per saved byte, so the link hides more")
    parser.add_argument("--bounds-mib", default=None,
                        help="comma-separated pending-copy bounds in MiB for the bounded cases "
                        "(default 128,512)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available() and args.model != "tiny"
    if not cuda:
        os.environ["TIERCACHE_DEVICE"] = "emulated"
    bounds = [int(b) << 20 for b in args.bounds_mib.split(",")] if args.bounds_mib else None
    results = run(quick=args.quick, cuda=cuda, model_kind=args.model, batch=args.batch,
                  sequence=args.sequence, bounds=bounds)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        name = "torch_activations.json" if args.sequence is None else \
            f"torch_activations_{results['batch']}x{results['sequence']}.json"
        with open(os.path.join(args.out, name), "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
