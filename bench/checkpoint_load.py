"""Cold start from a safetensors checkpoint: four loaders, cold and warm, side by side.

The 16-layer Llama-shaped model (5.67 GB bf16, random weights) is written once
with ``save_pretrained`` (safetensors, sharded at 2 GB) into the work
directory and reused while present. Then, in one process and one run:

- the disk's sequential O_DIRECT read rate (16 MiB reads of the largest
  shard, page cache dropped first) and the pinned host->device copy peak;
- for each loader, cold (``echo 3 > /proc/sys/vm/drop_caches`` first) and
  warm (the files in the page cache): the time from nothing to the first
  forward's logits on the GPU, the bytes read from storage (/proc/self/io
  read_bytes) and through the library (tiercache's own count), and the
  effective rate (checkpoint bytes / time). Loaders: transformers
  ``from_pretrained(device_map="cuda")``; ``safetensors.torch.load_file(device="cuda")``
  + ``load_state_dict`` into an empty model; tiercache with every layer on the
  GPU; tiercache streaming with a GPU budget of half the layers;
- the logits of every run compared with the first (bit-identical expected);
- warm restart from PMEM: tiercache with a PMEM tier (a DAX directory given
  with --pmem, else a file-backed tier in the work directory): a first load
  keeps the blocks there, a second registration reads them from it; once
  with the copies stored as they are, once encoded (--pmem-compression).

Targets (docs/perf.md): cold >= 0.9 of the O_DIRECT rate; warm >= 0.8 of the
pinned peak. Writes <out>/checkpoint_load.json; progress on stdout.
"""
import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from torch_streamer import copy_peak, direct_read_rate  # noqa: E402  (this folder's yardsticks)


def log(*args):
    print(f"[{time.strftime('%H:%M:%S')}]", *args, flush=True)


def llama_config(layers):
    import transformers
    config = transformers.LlamaConfig(
        hidden_size=4096, intermediate_size=11008, num_attention_heads=32,
        num_key_value_heads=8, num_hidden_layers=layers, vocab_size=32000,
        max_position_embeddings=4096, tie_word_embeddings=False)
    config._attn_implementation = "sdpa"
    return config


def write_checkpoint(directory, layers):
    done = os.path.join(directory, ".written")
    if os.path.exists(done):
        log(f"checkpoint: reusing {directory}")
        return
    import transformers
    os.makedirs(directory, exist_ok=True)
    log(f"checkpoint: writing a {layers}-layer model to {directory} (save_pretrained, 2GB shards)")
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            model = transformers.LlamaForCausalLM(llama_config(layers))
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(directory, max_shard_size="2GB")  # safetensors: the default
    del model
    torch.cuda.empty_cache()
    os.sync()
    open(done, "w").close()


def checkpoint_bytes(directory):
    return sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory)
               if f.endswith(".safetensors"))


def drop_caches():
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError as e:
        log(f"drop_caches refused ({e}): cold runs are skipped")
        return False


def storage_read_bytes():
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("read_bytes:"):
                return int(line.split()[1])
    return 0


def empty_model(directory):
    import accelerate
    import transformers
    config = transformers.AutoConfig.from_pretrained(directory)
    config._attn_implementation = "sdpa"
    with accelerate.init_empty_weights():
        model = with_dtype(transformers.LlamaForCausalLM._from_config, config)
    return model.eval()


def with_dtype(make, *args, **kwargs):
    """transformers 5 says dtype=, 4 said torch_dtype=."""
    try:
        return make(*args, dtype=torch.bfloat16, **kwargs)
    except TypeError:
        return make(*args, torch_dtype=torch.bfloat16, **kwargs)


def load_transformers(directory, ids, context):
    import transformers
    model = with_dtype(transformers.LlamaForCausalLM.from_pretrained, directory,
                       device_map="cuda", attn_implementation="sdpa")
    return model, None


def load_safetensors(directory, ids, context):
    from safetensors.torch import load_file
    model = empty_model(directory)
    context["phases"]["model_built"] = time.perf_counter()
    state = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".safetensors"):
            state.update(load_file(os.path.join(directory, name), device="cuda"))
    model.load_state_dict(state, assign=True, strict=False)
    model.tie_weights()
    model.to("cuda")  # the buffers (rotary frequencies)
    return model, None


def load_tiercache(directory, ids, context, fraction=1.0, pin=None, **options):
    import tiercache.torch as tt
    model = empty_model(directory)
    context["phases"]["model_built"] = time.perf_counter()
    layer = context["layer_bytes"]
    budget = int(fraction * context["layers"]) * layer + (64 << 20)
    config = {"chunk_bytes": "64MiB", "staging_buffers": 4}
    config.update(context["config"])
    if pin is not None:
        config["checkpoint_pin_page_cache"] = pin
    handle = tt.offload(model, checkpoint=directory, gpu_budget=budget, config=config, **options)
    return model, handle


def run(name, loader, directory, ids, context, cold, reference, **options):
    gc.collect()
    torch.cuda.empty_cache()
    if cold and not drop_caches():
        return None
    read_before = storage_read_bytes()
    torch.cuda.synchronize()
    context["phases"] = {}
    start = time.perf_counter()
    model, handle = loader(directory, ids, context, **options)
    torch.cuda.synchronize()
    loaded = time.perf_counter()
    with torch.no_grad():
        logits = model(ids).logits
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "storage_read_bytes": storage_read_bytes() - read_before,
              "rate_gbs": context["checkpoint_bytes"] / seconds / 1e9}
    # Where the time went: building the empty model (where the loader does it
    # apart), the loader's own work, the first forward (for a streaming
    # loader, the layers' reads too).
    built = context["phases"].get("model_built", start)
    result["phases_s"] = {"build_model": built - start, "load": loaded - built,
                          "first_forward": start + seconds - loaded}
    if handle is not None:
        # Later forwards: a streaming loader reads its streamed layers again each time.
        later = []
        for _ in range(3):
            torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.no_grad():
                again = model(ids).logits
            torch.cuda.synchronize()
            later.append(time.perf_counter() - t)
        result["later_forward_s"] = min(later)
        result["later_logits_identical"] = bool(torch.equal(again.float().cpu(), logits.float().cpu()))
        del again
        stats = handle.stats()
        result["tiercache"] = stats["checkpoints"][0] if stats["checkpoints"] else None
        result["persisted_blocks"] = sum(b["persisted"] for b in handle.checkpoint["blocks"])
        result["blocks"] = len(handle.checkpoint["blocks"])
    logits = logits.float().cpu()
    if reference.get("logits") is None:
        reference["logits"] = logits
    result["logits_identical"] = bool(torch.equal(logits, reference["logits"]))
    if handle is not None:
        handle.runtime.close()  # the model is dropped: no need to restore its weights
    del model, handle
    gc.collect()
    torch.cuda.empty_cache()
    phases = "  ".join(f"{k} {v:.2f}" for k, v in result["phases_s"].items())
    if "later_forward_s" in result:
        phases += f"; later forwards {result['later_forward_s'] * 1e3:.1f} ms"
    log(f"{name:>26}: {seconds:7.2f} s  {result['rate_gbs']:6.2f} GB/s  storage "
        f"{result['storage_read_bytes'] / 1e9:5.2f} GB  logits identical: {result['logits_identical']}  ({phases} s)")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", help="where the checkpoint is written and kept (default: --out)")
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--pmem", help="a DAX directory for the PMEM tier (default: a file in --work)")
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--pmem-compression", default="off,bf16",
                        help="compressions of the PMEM copies to measure the warm restart with")
    parser.add_argument("--loaders", default="transformers,safetensors,tiercache_gpu,tiercache_stream,"
                                             "tiercache_stream_unpinned")
    parser.add_argument("--config", default="{}",
                        help="JSON of runtime config keys over tiercache's (e.g. staging_buffers)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    work = args.work or args.out
    directory = os.path.join(work, f"llama{args.layers}_checkpoint")
    torch.cuda.init()
    torch.empty(1, device="cuda")
    import transformers  # noqa: F401  (imports are not part of any loader's time)
    import accelerate  # noqa: F401
    import safetensors.torch  # noqa: F401
    import tiercache.torch  # noqa: F401
    write_checkpoint(directory, args.layers)
    total = checkpoint_bytes(directory)
    shards = sorted(f for f in os.listdir(directory) if f.endswith(".safetensors"))
    results = {"machine": subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                                          "--format=csv,noheader"], capture_output=True,
                                         text=True).stdout.strip(),
               "date": time.strftime("%Y-%m-%d %H:%M"), "checkpoint": directory,
               "checkpoint_bytes": total, "shards": shards, "layers": args.layers}
    cold_ok = not args.skip_cold and drop_caches()
    largest = max(shards, key=lambda f: os.path.getsize(os.path.join(directory, f)))
    if cold_ok:
        rate, nbytes = direct_read_rate(os.path.join(directory, largest), 4 << 30)
        results["disk_o_direct_gbs"] = rate / 1e9
        log(f"disk: O_DIRECT sequential read {rate / 1e9:.2f} GB/s over {nbytes / 1e9:.2f} GB")
    results["pinned_peak_gbs"] = copy_peak("cuda") / 1e9
    torch.cuda.empty_cache()
    log(f"pinned host->device peak: {results['pinned_peak_gbs']:.2f} GB/s")
    layer = (total - 2 * 32000 * 4096 * 2) // args.layers + (1 << 20)
    context = {"checkpoint_bytes": total, "layers": args.layers, "layer_bytes": layer,
               "config": json.loads(args.config)}
    results["config"] = context["config"]
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 32000, (1, 32), generator=g).cuda()
    loaders = {"transformers": (load_transformers, {}),
               "safetensors": (load_safetensors, {}),
               "tiercache_gpu": (load_tiercache, {}),
               "tiercache_stream": (load_tiercache, {"fraction": 0.5}),
               # The same with the page cache never pinned: every read staged.
               "tiercache_stream_unpinned": (load_tiercache, {"fraction": 0.5, "pin": "off"})}
    reference = {}
    results["loaders"] = {}
    for name in args.loaders.split(","):
        loader, options = loaders[name]
        entry = {}
        if cold_ok:
            entry["cold"] = run(f"{name} cold", loader, directory, ids, context, True, reference,
                                **options)
        # Warm: the files in the page cache. Read them first whatever ran
        # before: a cold run through O_DIRECT (tiercache's) leaves the page
        # cache empty, and the warm case would then be a second cold one.
        for shard in shards:
            with open(os.path.join(directory, shard), "rb") as f:
                while f.read(64 << 20):
                    pass
        entry["warm"] = run(f"{name} warm", loader, directory, ids, context, False, reference,
                            **options)
        results["loaders"][name] = entry
    # Warm restart from PMEM.
    # Once with the copies stored as they are, once encoded (compression=bf16:
    # each load from PMEM moves about 0.71 of the bytes).
    pmem = args.pmem or os.path.join(work, "pmem")
    os.makedirs(pmem, exist_ok=True)
    pmem_file = os.path.join(pmem, "tiercache.pmem")
    restart = {"pmem": pmem, "dax": bool(args.pmem)}
    for compression in filter(None, args.pmem_compression.split(",")):
        if os.path.exists(pmem_file):
            os.remove(pmem_file)  # a fresh tier: the first load fills it
        pmem_options = {"pmem_path": pmem, "pmem_bytes": int(total * 1.1) + (256 << 20),
                        "compression": compression}
        suffix = "" if compression == "off" else f"_{compression}"
        restart["fill" + suffix] = run(f"tiercache fill pmem {compression}", load_tiercache,
                                       directory, ids, context, False, reference, **pmem_options)
        restart["restart" + suffix] = run(f"tiercache from pmem {compression}", load_tiercache,
                                          directory, ids, context, False, reference, **pmem_options)
    results["pmem_restart"] = restart
    results["verdicts"] = verdicts(results)
    with open(os.path.join(args.out, "checkpoint_load.json"), "w") as f:
        json.dump(results, f, indent=1)
    log("verdicts: " + json.dumps(results["verdicts"], indent=1))


def verdicts(r):
    v = {}
    disk, peak = r.get("disk_o_direct_gbs"), r["pinned_peak_gbs"]
    for name, entry in r["loaders"].items():
        if entry.get("cold") and disk:
            v[f"{name} cold / disk"] = entry["cold"]["rate_gbs"] / disk
        if entry.get("warm"):
            v[f"{name} warm / pinned peak"] = entry["warm"]["rate_gbs"] / peak
    for phase in ("cold", "warm"):
        ours = (r["loaders"].get("tiercache_gpu") or {}).get(phase)
        if ours and disk and phase == "cold":
            v["target: tiercache cold >= 0.9 x disk"] = ours["rate_gbs"] >= 0.9 * disk
        if ours and phase == "warm":
            v["target: tiercache warm >= 0.8 x pinned peak"] = ours["rate_gbs"] >= 0.8 * peak
    runs = [x for e in r["loaders"].values() for x in e.values() if x]
    runs += [x for k, x in r["pmem_restart"].items() if k.startswith(("fill", "restart")) and x]
    v["logits identical across loaders"] = all(x["logits_identical"] for x in runs)
    for key, restart in r["pmem_restart"].items():
        if not key.startswith("restart") or not restart:
            continue
        v[f"pmem {key}: blocks found in pmem"] = f"{restart['persisted_blocks']} of {restart['blocks']}"
        v[f"pmem {key} GB/s"] = restart["rate_gbs"]
    return v


if __name__ == "__main__":
    main()
