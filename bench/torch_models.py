"""Models for the PyTorch benchmarks, behind one small interface.

``llama`` is a Llama-shaped transformers model built from a config with random
bf16 weights (no downloads); ``tiny`` is the small plain-torch decoder of the
package's tests, so the benchmark's plumbing also runs on a machine without a
GPU or transformers. Each exposes: ``module`` (the nn.Module), ``layers`` (the
decoder layers), ``logits(ids)``, ``generate(ids, n)`` (greedy, KV cache),
``decode(batch, steps)`` (seconds for `steps` one-token steps of a batch, after
a short prefill) and ``prefill(tokens)`` (seconds for one prompt forward).
"""
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Timed:
    def __init__(self, device):
        self.device = device

    def __enter__(self):
        synchronize(self.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        synchronize(self.device)
        self.seconds = time.perf_counter() - self.start


class Llama:
    def __init__(self, device, layers=16, hidden=4096, intermediate=11008, heads=32, kv_heads=8,
                 vocab=32000, seed=0, attention="sdpa"):
        import transformers
        config = transformers.LlamaConfig(
            hidden_size=hidden, intermediate_size=intermediate, num_attention_heads=heads,
            num_key_value_heads=kv_heads, num_hidden_layers=layers, vocab_size=vocab,
            max_position_embeddings=4096, tie_word_embeddings=False)
        config._attn_implementation = attention
        torch.manual_seed(seed)
        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.bfloat16)
        try:
            with torch.device(device):
                model = transformers.LlamaForCausalLM(config)
        finally:
            torch.set_default_dtype(default)
        self.module = model.to(torch.bfloat16).eval()
        self.layers = list(self.module.model.layers)
        self.device, self.vocab, self.config = device, vocab, config

    def logits(self, ids):
        with torch.no_grad():
            return self.module(input_ids=ids, use_cache=False).logits

    def generate(self, ids, n):
        with torch.no_grad():
            return self.module.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                        max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                        pad_token_id=0, eos_token_id=None)

    def decode(self, batch, steps, context=32):
        ids = torch.randint(0, self.vocab, (batch, context), device=self.device,
                            generator=torch.Generator(self.device).manual_seed(5))
        with torch.no_grad():
            out = self.module(input_ids=ids, use_cache=True)
            cache = out.past_key_values
            token = out.logits[:, -1:].argmax(-1)
            with _Timed(self.device) as timed:
                for _ in range(steps):
                    out = self.module(input_ids=token, past_key_values=cache, use_cache=True)
                    cache = out.past_key_values
                    token = out.logits[:, -1:].argmax(-1)
        return timed.seconds

    def prefill(self, tokens):
        ids = torch.randint(0, self.vocab, (1, tokens), device=self.device,
                            generator=torch.Generator(self.device).manual_seed(6))
        with torch.no_grad(), _Timed(self.device) as timed:
            self.module(input_ids=ids, use_cache=True)
        return timed.seconds


class Tiny:
    def __init__(self, device, layers=8, seed=0):
        sys.path.insert(0, os.path.join(HERE, "..", "python", "tests"))
        from tiny_decoder import make_model
        self.module = make_model(seed=seed, dim=256, heads=8, kv_heads=2, hidden=704,
                                 layers=layers, vocab=512).to(device)
        self.layers = list(self.module.trunk.blocks)
        self.device, self.vocab = device, 512

    def logits(self, ids):
        with torch.no_grad():
            return self.module(ids)

    def generate(self, ids, n):
        return self.module.generate(ids, n)

    def decode(self, batch, steps, context=32):
        ids = torch.randint(0, self.vocab, (batch, context), device=self.device)
        caches = [[None, None] for _ in self.layers]
        with torch.no_grad():
            logits = self.module(ids, 0, caches)
            token = logits[:, -1:].argmax(-1)
            with _Timed(self.device) as timed:
                for i in range(steps):
                    logits = self.module(token, context + i, caches)
                    token = logits[:, -1:].argmax(-1)
        return timed.seconds

    def prefill(self, tokens):
        ids = torch.randint(0, self.vocab, (1, tokens), device=self.device)
        with torch.no_grad(), _Timed(self.device) as timed:
            self.module(ids)
        return timed.seconds


def layer_bytes(layer):
    return sum(p.numel() * p.element_size() for p in layer.parameters())


def timed(device):
    return _Timed(device)
