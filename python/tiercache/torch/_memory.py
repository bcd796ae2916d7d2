"""Torch tensors that view memory tiercache owns, without copying it.

On a CUDA runtime an address is device memory, wrapped through
``__cuda_array_interface__`` (``torch.as_tensor`` keeps the wrapper alive as
long as the tensor); on the emulated device it is host memory, wrapped
through ``__array_interface__`` and ``torch.from_numpy``. The wrapper may
carry an ``owner`` whose lifetime then follows the tensor's (its ``__del__``
frees the memory).

Also the stream helpers: the stream a hook should pass to tiercache is
PyTorch's current CUDA stream, and NULL (the emulated default stream) on CPU.
"""
import torch

__all__ = ["byte_view", "typed_view", "current_stream", "compute_device"]


class _Interface:
    def __init__(self, address, nbytes, owner, cuda):
        description = {"shape": (nbytes,), "typestr": "|u1", "data": (address, False),
                       "strides": None, "version": 2 if cuda else 3}
        if cuda:
            self.__cuda_array_interface__ = description
        else:
            self.__array_interface__ = description
        self.owner = owner


def byte_view(address, nbytes, device, owner=None):
    """A 1-D uint8 tensor on `device` over [address, address + nbytes)."""
    if device.type == "cuda":
        return torch.as_tensor(_Interface(address, nbytes, owner, True), device=device)
    import numpy  # only the emulated device's host memory goes through numpy
    return torch.from_numpy(numpy.asarray(_Interface(address, nbytes, owner, False)))


def typed_view(flat, offset, dtype, shape, strides=None):
    """`flat[offset:]` seen as a tensor of `dtype` and `shape` (and strides)."""
    size = torch.empty((), dtype=dtype).element_size()
    count = 1
    if strides is None:
        for dim in shape:
            count *= dim
    else:
        count = 1 + sum((d - 1) * s for d, s in zip(shape, strides)) if all(shape) else 0
    piece = flat[offset:offset + count * size].view(dtype)
    if strides is None:
        return piece.view(shape)
    return piece.as_strided(shape, strides)


def compute_device(runtime):
    """The device tensors viewing this runtime's "device" memory live on."""
    if runtime.emulated:
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def current_stream(runtime, device):
    """The stream handle to give tiercache for work PyTorch enqueues now."""
    if runtime.emulated or device.type != "cuda":
        return None
    return torch.cuda.current_stream(device).cuda_stream
