"""A small Llama-shaped decoder in plain PyTorch: the model the adapter's tests run.

Grouped-query attention with rotary embeddings (a buffer per layer), RMSNorm,
a gated MLP, a KV cache and greedy generation: the structure transformers'
decoders have, under names of its own (``Trunk.blocks``), so that finding the
layers by structure is what is tested.
"""
import torch
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        variance = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * torch.rsqrt(variance + self.eps)).to(x.dtype) * self.weight


def _rotate(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class Block(nn.Module):
    def __init__(self, dim, heads, kv_heads, hidden):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, dim // heads
        self.attn_norm = RMSNorm(dim)
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.v = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.o = nn.Linear(dim, dim, bias=False)
        self.mlp_norm = RMSNorm(dim)
        self.gate = nn.Linear(dim, hidden, bias=False)
        self.up = nn.Linear(dim, hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)
        inv_freq = 1.0 / (10000 ** (torch.arange(0, self.head_dim, 2).float() / self.head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def _rope(self, positions, dtype):
        freqs = positions[:, None].float() * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)

    def forward(self, x, start=0, cache=None):
        batch, length, dim = x.shape
        h = self.attn_norm(x)
        q = self.q(h).view(batch, length, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(h).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(h).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = self._rope(torch.arange(start, start + length, device=x.device), x.dtype)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        if cache is not None:
            if cache[0] is not None:
                k = torch.cat((cache[0], k), dim=2)
                v = torch.cat((cache[1], v), dim=2)
            cache[0], cache[1] = k, v
        repeat = self.heads // self.kv_heads
        k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
        scores = q @ k.transpose(-1, -2) / self.head_dim ** 0.5
        total = k.shape[2]
        mask = torch.ones(length, total, dtype=torch.bool, device=x.device).tril(total - length)
        scores = scores.masked_fill(~mask, float("-inf"))
        attn = torch.softmax(scores.float(), dim=-1).to(x.dtype) @ v
        x = x + self.o(attn.transpose(1, 2).reshape(batch, length, dim))
        h = self.mlp_norm(x)
        return x + self.down(nn.functional.silu(self.gate(h)) * self.up(h))


class Trunk(nn.Module):
    def __init__(self, vocab, dim, heads, kv_heads, hidden, layers):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, kv_heads, hidden) for _ in range(layers))
        self.norm = RMSNorm(dim)


class TinyDecoder(nn.Module):
    def __init__(self, vocab=97, dim=64, heads=4, kv_heads=2, hidden=160, layers=4):
        super().__init__()
        self.trunk = Trunk(vocab, dim, heads, kv_heads, hidden, layers)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, ids, start=0, caches=None):
        x = self.trunk.embed(ids)
        for i, block in enumerate(self.trunk.blocks):
            x = block(x, start, None if caches is None else caches[i])
        return self.head(self.trunk.norm(x))

    @torch.no_grad()
    def generate(self, ids, new_tokens):
        """Greedy decoding with a KV cache: one prefill, then one token per step."""
        caches = [[None, None] for _ in self.trunk.blocks]
        logits = self(ids, 0, caches)
        out = ids
        for _ in range(new_tokens):
            token = logits[:, -1].argmax(-1, keepdim=True)
            out = torch.cat((out, token), dim=1)
            logits = self(token, out.shape[1] - 1, caches)
        return out


def make_model(seed=0, dtype=torch.float32, **shape):
    torch.manual_seed(seed)
    return TinyDecoder(**shape).to(dtype).eval()
