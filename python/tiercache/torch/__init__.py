"""tiercache for PyTorch: weight offload and activation offload.

- ``offload(model, gpu_budget=..., home="dram"|"pmem"|"nvme", modules=None)``:
  the weights of the chosen modules (default: the decoder layers, found by
  structure) become tiercache blocks, acquired and released by module hooks.
  Returns an ``OffloadHandle`` (``stats()``, ``close()``).
- ``offload_activations(min_bytes=...)``: a context manager that sends large
  saved activations through tiercache's activation store during forward and
  restores them, several ahead, during backward.

On a machine without a GPU (or with ``TIERCACHE_DEVICE=emulated``) the
runtime's device is host memory and the same code runs with CPU tensors.
"""
import torch  # before libtiercache is loaded: it then shares PyTorch's CUDA runtime

from ._activations import ActivationOffload, offload_activations
from ._layers import decoder_layers
from ._weights import OffloadHandle, offload

__all__ = ["offload", "OffloadHandle", "offload_activations", "ActivationOffload",
           "decoder_layers"]
