#!/usr/bin/env python3
"""Weight offload from PyTorch, tiercache against its peers, in one process.

    python3 bench/torch_offload_bench.py --out DIR [--quick] [--nvme-dir DIR]

On a Llama-shaped model (transformers config, random bf16 weights, 16 decoder
layers of hidden 4096 / intermediate 11008 / 32 heads / 8 KV heads: 5.67 GB of
decoder weights) it runs, in this order: all on the GPU; a hand-written pinned
double-buffer streamer; tiercache homed in DRAM (GPU room for 3 layers);
tiercache with GPU budgets of 25%, 50% and 75% of the weights; tiercache homed
on NVMe (a directory on a local disk); the DRAM, 50% and NVMe cases again with
``compression="bf16"`` (the lossless codec, decoded on the GPU; their step
time against the uncompressed case and batch-1 tokens/s against llama.cpp's
CPU split); accelerate's ``cpu_offload`` of each layer (last: it leaves the
model on its hooks). Half the layers resident with two layers' room to stream
the rest (``tiercache-dram-half+2``, plain and compressed). ``--only a,b`` runs only the named cases (and all-on-gpu,
the reference). Per case: step time (one token,
batch 1), bytes moved per step, effective GB/s and its fraction of the pinned
copy peak measured here, the process's host memory and GPU memory, logits and
32 greedy tokens compared with the all-on-GPU run, and (where streaming meets
llama.cpp's static split) decode tokens/s at batch 1, 4 and 16 and a 512-token
prefill. Then the activation-offload training step (bench/torch_activation_bench.py).
A table goes to stdout, everything to DIR/torch_offload.json.

``--model tiny`` runs the same plumbing on the package's small test decoder
(CPU, emulated device) to check the script itself; its figures mean nothing.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)

import torch  # noqa: E402  (before tiercache: it shares PyTorch's CUDA runtime)

import tiercache  # noqa: E402
import tiercache.torch as tct  # noqa: E402
import torch_models  # noqa: E402
import torch_streamer  # noqa: E402

GB = 1e9
LLAMA_CPP = {"decode_b1": 23.9, "decode_b4": 76.0, "decode_b16": 102.0, "prefill_512": 1023.0}


def log(*args):
    print(*args, flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        cuda = args.model == "llama"
        self.device = torch.device("cuda", 0) if cuda else torch.device("cpu")
        if not cuda:
            os.environ["TIERCACHE_DEVICE"] = "emulated"
        log(f"building the {args.model} model")
        if cuda:
            self.model = torch_models.Llama(self.device, layers=args.layers)
        else:
            self.model = torch_models.Tiny(self.device)
        self.decoder_bytes = sum(torch_models.layer_bytes(l) for l in self.model.layers)
        self.layer_bytes = max(torch_models.layer_bytes(l) for l in self.model.layers)
        self.model_bytes = sum(p.numel() * p.element_size() for p in self.model.module.parameters())
        gen = torch.Generator(self.device).manual_seed(7)
        self.prompt = torch.randint(0, self.model.vocab, (1, 16), device=self.device, generator=gen)
        self.step_input = self.prompt[:, :1]
        self.results = {"cases": {}, "model": {"decoder_bytes": self.decoder_bytes,
                                               "layer_bytes": self.layer_bytes,
                                               "model_bytes": self.model_bytes,
                                               "layers": len(self.model.layers)}}
        self.reference = None
        self.broken = None  # why later cases cannot run, once a case could not be undone

    # ---- measurements -------------------------------------------------------
    def step_seconds(self, steps, warmup, stats=None):
        """(seconds per step, bytes uploaded per step) over the timed steps only."""
        for _ in range(warmup):
            self.model.logits(self.step_input)
        moved = _gpu_bytes_in(stats) if stats else 0
        with torch_models.timed(self.device) as t:
            for _ in range(steps):
                self.model.logits(self.step_input)
        if stats:
            moved = (_gpu_bytes_in(stats) - moved) / steps
        return t.seconds / steps, moved

    def gpu_peak(self):
        if self.device.type != "cuda":
            return 0
        return torch.cuda.max_memory_allocated(self.device)

    def reset_gpu_peak(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            # cuBLAS keeps a workspace per (handle, stream) allocated from the
            # caching allocator: the streams an earlier case used would count
            # in every later case's peak (32 MiB each on the H200).
            clear = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
            if clear:
                clear()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def run_case(self, name, setup, steps, warmup=2, sweep=False, generate=True, budget=None,
                 moves=None):
        """setup() -> (close callable, host bytes the case homes, runtime stats callable)."""
        if self.args.only and name != "all-on-gpu" and name not in self.args.only:
            return None
        log(f"--- {name}")
        if self.broken:
            log(f"skipped: an earlier case left the model unusable ({self.broken})")
            return None
        started = time.perf_counter()
        self.reset_gpu_peak()
        host_before = torch_streamer.host_memory()
        try:
            close, homed, stats = setup()
        except Exception as e:  # nothing was changed (offload leaves the model as it was)
            traceback.print_exc()
            self.results["cases"][name] = {"error": f"setup: {type(e).__name__}: {e}"}
            return None
        # The peak from here on: before setup the decoder weights were still
        # on the GPU, which made every case's peak at least the all-on-GPU one.
        self.reset_gpu_peak()
        try:
            case = self._measure(name, stats, steps, warmup, sweep, generate, budget, moves,
                                 host_before, homed)
        except Exception as e:
            traceback.print_exc()
            self.results["cases"][name] = {"error": f"{type(e).__name__}: {e}"}
            case = None
        try:
            close()
        except Exception as e:
            traceback.print_exc()
            self.broken = f"{name}: close failed: {e}"
        if case is not None:
            case["seconds"] = time.perf_counter() - started
            self.results["cases"][name] = case
            log(_case_line(name, case, self.results))
        self.save()  # after every case: a run cut short keeps what it measured
        return case

    def save(self):
        with open(os.path.join(self.args.out, "torch_offload.json"), "w") as f:
            json.dump(self.results, f, indent=1, default=str)

    def _measure(self, name, stats, steps, warmup, sweep, generate, budget, moves, host_before,
                 homed):
        host_after = torch_streamer.host_memory()
        case = {"host_bytes_after_setup": host_after, "host_bytes_added": host_after - host_before,
                "homed_bytes": homed, "gpu_budget": budget}
        if stats:  # the staging ring is carved from the DRAM tier
            config = stats()["config"]
            case["ring_bytes"] = config["staging_buffers"] * config["chunk_bytes"]
        if homed:
            case["host_vs_homed"] = (host_after - host_before) / (homed + case.get("ring_bytes", 0))
        logits = self.model.logits(self.prompt)  # the first forward: the prefetcher learns here
        case["step_s"], moved = self.step_seconds(steps, warmup, stats)
        if stats:
            case["moved_bytes_per_step"] = moved
            case["runtime_stats"] = stats()
        elif moves:
            case["moved_bytes_per_step"] = moves  # a peer that streams every layer each step
        case["gpu_peak_torch_bytes"] = self.gpu_peak()
        if stats:
            allocator = case["runtime_stats"].get("allocator", {})
            case["gpu_pool_reserved_bytes"] = allocator.get("reserved_bytes", 0)
        if self.reference is None:
            self.reference = {"logits": logits, "tokens": None}
        case["logits_identical"] = bool(torch.equal(logits, self.reference["logits"]))
        if stats and self.device.type == "cuda" and generate:  # not at disk speed
            case["two_streams_identical"] = self.two_streams()
        if generate:
            tokens = self.model.generate(self.prompt, self.args.tokens)
            if self.reference["tokens"] is None:
                self.reference["tokens"] = tokens
            case["tokens_identical"] = bool(torch.equal(tokens, self.reference["tokens"]))
        if sweep:
            case.update(self.sweep())
        return case

    def two_streams(self):
        """Two forwards enqueued on two streams, both in flight, against the reference."""
        if getattr(self, "_streams", None) is None:  # the same two for every case
            self._streams = [torch.cuda.Stream(self.device) for _ in range(2)]
        streams = self._streams
        current = torch.cuda.current_stream(self.device)
        outputs = []
        for stream in streams:
            stream.wait_stream(current)
            with torch.cuda.stream(stream):
                outputs.append(self.model.logits(self.prompt))
        torch.cuda.synchronize(self.device)
        return all(bool(torch.equal(o, self.reference["logits"])) for o in outputs)

    def sweep(self):
        out = {}
        for batch in (1, 4, 16):
            steps = 4 if self.args.quick else 8
            seconds = self.model.decode(batch, steps)
            out[f"decode_b{batch}"] = batch * steps / seconds
        out["prefill_512"] = 512 / self.model.prefill(512)
        return out

    # ---- cases ---------------------------------------------------------------
    def all_on_gpu(self):
        return (lambda: None), 0, None

    def streamer(self):
        s = torch_streamer.DoubleBufferStreamer(self.model.layers, self.device)
        torch.cuda.empty_cache()

        def close():
            s.close()
            empty_host_cache = getattr(torch._C, "_host_emptyCache", None)
            if empty_host_cache:  # PyTorch keeps freed pinned blocks otherwise
                empty_host_cache()
        return close, s.bytes, None

    def tiercache(self, budget, home="dram", **options):
        def setup():
            handle = tct.offload(self.model.module, gpu_budget=budget, home=home,
                                 modules=self.model.layers, config=dict(self.args.config), **options)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return handle.close, (self.decoder_bytes if home == "dram" else 0), handle.stats
        return setup

    def accelerate(self):
        from accelerate import cpu_offload
        for layer in self.model.layers:
            cpu_offload(layer, execution_device=self.device)
        torch.cuda.empty_cache()
        return (lambda: None), self.decoder_bytes, None


def _gpu_bytes_in(stats):
    """Bytes delivered into GPU memory: decoded bytes for compressed blocks
    (the GPU tier's bytes_in counts what crossed the link, the encoding)."""
    s = stats()
    codec = s.get("codec", {})
    return s["tiers"][0]["bytes_in"] - codec.get("moved_bytes", 0) + codec.get("decoded_bytes", 0)


def _case_line(name, case, results):
    peak = results.get("copy_peak_Bps")
    moved = case.get("moved_bytes_per_step")
    parts = [f"{name:<22} step {case['step_s'] * 1e3:8.1f} ms"]
    if moved is not None:
        rate = moved / case["step_s"]
        parts.append(f"moved {moved / GB:5.2f} GB/step {rate / GB:6.1f} GB/s")
        if peak:
            parts.append(f"({rate / peak:.3f} of peak)")
    parts.append(f"host +{case['host_bytes_added'] / GB:5.2f} GB")
    if case.get("host_vs_homed"):
        parts.append(f"({case['host_vs_homed']:.2f}x homed)")
    parts.append(f"gpu {case['gpu_peak_torch_bytes'] / GB:5.2f}"
                 f"+{case.get('gpu_pool_reserved_bytes', 0) / GB:.2f} GB")
    parts.append(f"logits {'==' if case['logits_identical'] else '!='}")
    if "tokens_identical" in case:
        parts.append(f"tokens {'==' if case['tokens_identical'] else '!='}")
    if "two_streams_identical" in case:
        parts.append(f"2 streams {'==' if case['two_streams_identical'] else '!='}")
    for key in ("decode_b1", "decode_b4", "decode_b16", "prefill_512"):
        if key in case:
            parts.append(f"{key} {case[key]:.1f} tok/s")
    return "  ".join(parts)


def _parse_config(items):
    config = {}
    for item in items or []:
        key, _, value = item.partition("=")
        config[key] = value
    return config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory for torch_offload.json")
    parser.add_argument("--quick", action="store_true", help="fewer steps; no NVMe, no budgets")
    parser.add_argument("--model", choices=("llama", "tiny"), default="llama")
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=32, help="greedy tokens per case")
    parser.add_argument("--nvme-dir", default=os.environ.get("TIERCACHE_BENCH_NVME_DIR", "/var/tmp"),
                        help="a directory on the local disk for the NVMe home")
    parser.add_argument("--nvme-generate", action="store_true",
                        help="also generate from the NVMe-homed model (a forward per token "
                             "at disk speed: minutes)")
    parser.add_argument("--config", action="append", metavar="KEY=VALUE",
                        help="a runtime config key for every tiercache case")
    parser.add_argument("--skip-activations", action="store_true")
    parser.add_argument("--only", default="", help="comma list of the cases to run (all-on-gpu always runs)")
    args = parser.parse_args()
    args.config = _parse_config(args.config)
    args.only = [c for c in args.only.split(",") if c]
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()

    bench = Bench(args)
    cuda = bench.device.type == "cuda"
    r = bench.results
    r["machine"] = {"torch": torch.__version__, "tiercache": tiercache.library_version(),
                    "device": torch.cuda.get_device_name(0) if cuda else "cpu (emulated)",
                    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if cuda:
        r["copy_peak_Bps"] = torch_streamer.copy_peak(bench.device)
        log(f"pinned copy peak {r['copy_peak_Bps'] / GB:.1f} GB/s")
    steps = 3 if args.quick else 8
    W, L = bench.decoder_bytes, bench.layer_bytes

    bench.run_case("all-on-gpu", bench.all_on_gpu, steps, sweep=True)
    gpu = r["cases"]["all-on-gpu"]
    if cuda:
        bench.run_case("pinned-double-buffer", bench.streamer, steps, sweep=True, moves=W)
    bench.run_case("tiercache-dram", bench.tiercache(3 * L + (1 << 20)), steps, sweep=True,
                   budget=3 * L + (1 << 20))
    bench.run_case("tiercache-dram-bf16", bench.tiercache(3 * L + (1 << 20), compression="bf16"),
                   steps, sweep=True, budget=3 * L + (1 << 20))
    if not args.quick:
        for fraction in (0.25, 0.5, 0.75):
            budget = max(int(fraction * W), 2 * L)
            bench.run_case(f"tiercache-dram-{int(fraction * 100)}%", bench.tiercache(budget),
                           steps, sweep=fraction == 0.5, budget=budget)
        budget = max(int(0.5 * W), 2 * L)
        bench.run_case("tiercache-dram-50%-bf16", bench.tiercache(budget, compression="bf16"),
                       steps, sweep=True, budget=budget)
        # Half the layers resident and two layers' room to stream the rest
        # through (llama.cpp's split keeps half the layers on the GPU and
        # computes the rest on the CPU; whole-block slots need the two).
        budget = int(0.5 * W) + 2 * L
        for name, compression in (("tiercache-dram-half+2", None), ("tiercache-dram-half+2-bf16", "bf16")):
            bench.run_case(name, bench.tiercache(budget, compression=compression), steps, sweep=True,
                           budget=budget)
    nvme = None
    if not args.quick:
        free = shutil.disk_usage(args.nvme_dir).free
        wanted = not args.only or {"tiercache-nvme", "tiercache-nvme-bf16"} & set(args.only)
        if free > W + (4 << 30) and wanted:
            nvme = tempfile.mkdtemp(prefix="tiercache-bench-", dir=args.nvme_dir)
            r["disk_odirect_Bps"] = torch_streamer.disk_rate(nvme)
            log(f"O_DIRECT read of {args.nvme_dir}: {r['disk_odirect_Bps'] / GB:.2f} GB/s")
            try:
                for name, compression in (("tiercache-nvme", None), ("tiercache-nvme-bf16", "bf16")):
                    bench.run_case(name, bench.tiercache(3 * L + (1 << 20), "nvme", nvme_path=nvme,
                                                         compression=compression),
                                   1, warmup=1, generate=args.nvme_generate,
                                   budget=3 * L + (1 << 20))
            finally:
                shutil.rmtree(nvme, ignore_errors=True)
        elif wanted:
            log(f"skipping the NVMe case: {free / GB:.1f} GB free in {args.nvme_dir}")
    if cuda and (not args.only or "accelerate-cpu_offload" in args.only):
        try:
            import accelerate  # noqa: F401
            bench.run_case("accelerate-cpu_offload", bench.accelerate, 2 if args.quick else 3,
                           warmup=1, generate=not args.quick, moves=W)
        except ImportError:
            log("accelerate is not installed: its case is skipped")

    _verdicts(r, gpu)
    if not args.skip_activations:
        import torch_activation_bench
        del bench  # the weight model's memory goes before the training step's
        torch.cuda.empty_cache() if cuda else None
        try:
            r["activations"] = torch_activation_bench.run(quick=args.quick, cuda=cuda)
        except Exception as e:
            traceback.print_exc()
            r["activations"] = {"error": f"{type(e).__name__}: {e}"}
    r["seconds"] = time.perf_counter() - started
    with open(os.path.join(args.out, "torch_offload.json"), "w") as f:
        json.dump(r, f, indent=1, default=str)
    log(f"wrote {os.path.join(args.out, 'torch_offload.json')} after {r['seconds']:.0f} s")


def _verdicts(r, gpu):
    """The issue's targets, as ratios measured in this run."""
    cases = {n: c for n, c in r["cases"].items() if "error" not in c}
    peak = r.get("copy_peak_Bps")
    v = r["verdicts"] = {"failed_cases": [n for n, c in r["cases"].items() if "error" in c]}
    if "step_s" not in gpu:
        log("verdicts: none (the all-on-GPU case failed)")
        return
    dram = cases.get("tiercache-dram")
    if dram and peak and dram.get("moved_bytes_per_step"):
        v["dram_vs_peak"] = dram["moved_bytes_per_step"] / dram["step_s"] / peak
    acc = cases.get("accelerate-cpu_offload")
    if dram and acc:
        v["dram_speedup_vs_accelerate"] = acc["step_s"] / dram["step_s"]
        v["accelerate_step_s"] = acc["step_s"]
    if peak:
        W = r["model"]["decoder_bytes"]
        for fraction in (25, 50, 75):
            case = cases.get(f"tiercache-dram-{fraction}%")
            if case:
                bound = (1 - fraction / 100) * W / peak + gpu["step_s"]
                v[f"budget_{fraction}_vs_bound"] = case["step_s"] / bound
    nvme = cases.get("tiercache-nvme")
    if nvme and peak and r.get("disk_odirect_Bps"):
        slower = min(peak, r["disk_odirect_Bps"])
        v["nvme_vs_slower_link"] = nvme["moved_bytes_per_step"] / nvme["step_s"] / slower
    half = cases.get("tiercache-dram-50%")
    if half:
        v["vs_llama_cpp_at_50%"] = {k: half[k] / LLAMA_CPP[k] for k in LLAMA_CPP if k in half}
    # Compressed against uncompressed, and batch 1 against llama.cpp's CPU
    # split on this host (MISSION.md: 11.6 tok/s all 16 layers on the CPU,
    # 23.9 with half on the GPU).
    for plain_name, target in (("tiercache-dram", 11.6), ("tiercache-dram-50%", 23.9),
                               ("tiercache-dram-half+2", 23.9), ("tiercache-nvme", None)):
        plain, packed = cases.get(plain_name), cases.get(plain_name + "-bf16")
        if packed and plain:
            v[f"{plain_name}-bf16_speedup"] = plain["step_s"] / packed["step_s"]
        if packed and target and "decode_b1" in packed:
            v[f"{plain_name}-bf16_decode_b1_vs_llama_cpp"] = packed["decode_b1"] / target
    nvme_packed = cases.get("tiercache-nvme-bf16")
    if nvme_packed and r.get("disk_odirect_Bps"):
        v["nvme-bf16_decoded_vs_disk"] = (nvme_packed["moved_bytes_per_step"] / nvme_packed["step_s"] /
                                          r["disk_odirect_Bps"])
    # GPU memory: torch's peak (activations, KV cache, the layers not offloaded)
    # plus the runtime's pool, against the budget plus what the all-on-GPU run
    # needed beside the decoder weights.
    beside = gpu["gpu_peak_torch_bytes"] - r["model"]["decoder_bytes"]
    for name, case in cases.items():
        if "host_vs_homed" in case:
            v[f"host_memory_{name}"] = case["host_vs_homed"]
        if case.get("gpu_budget") and beside > 0:
            used = case["gpu_peak_torch_bytes"] + case.get("gpu_pool_reserved_bytes", 0)
            v[f"gpu_memory_{name}"] = used / (case["gpu_budget"] + beside)
    log("verdicts: " + json.dumps(v, indent=1))


if __name__ == "__main__":
    main()
