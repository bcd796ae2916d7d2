"""Finding a model's decoder layers by structure, and packing a module's parameters.

The layers of a transformer are the largest ``nn.ModuleList`` whose members
all have one class and parameters of their own (``model.layers``,
``transformer.h``, ``decoder.layers``, ...): no model's class names are
looked for. A module's parameters are packed into one block, each at an
offset aligned to 256 bytes so that every view is aligned for any dtype and
for vectorised device loads.
"""
import torch

__all__ = ["decoder_layers", "Slot", "pack_layout", "ALIGNMENT"]

ALIGNMENT = 256


def _parameter_count(module):
    return sum(p.numel() for p in module.parameters())


def decoder_layers(model):
    """[(qualified name, module)] of the model's repeated layers, in order."""
    best, best_count = None, 0
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.ModuleList) or len(module) < 2:
            continue
        kinds = {type(child) for child in module}
        if len(kinds) != 1:
            continue
        if not all(any(True for _ in child.parameters()) for child in module):
            continue
        count = _parameter_count(module)
        if count > best_count:
            prefix = f"{name}." if name else ""
            best = [(f"{prefix}{i}", child) for i, child in enumerate(module)]
            best_count = count
    if best is None:
        raise ValueError("offload: found no list of repeated layers in the model; "
                         "pass modules=[...] explicitly")
    return best


class Slot:
    """Where one parameter lives inside its module's block."""

    __slots__ = ("owner", "name", "parameter", "offset", "nbytes", "dtype", "shape",
                 "home_device")

    def __init__(self, owner, name, parameter, offset):
        self.owner = owner          # the submodule holding the parameter
        self.name = name            # its attribute name there
        self.parameter = parameter  # the nn.Parameter (kept: its identity must not change)
        self.offset = offset
        self.nbytes = parameter.numel() * parameter.element_size()
        self.dtype = parameter.dtype
        self.shape = tuple(parameter.shape)
        self.home_device = parameter.device  # where close() puts it back


def pack_layout(module):
    """(slots, block bytes) for the module's parameters, each once."""
    slots, offset, seen = [], 0, set()
    for owner in module.modules():
        for name, parameter in owner._parameters.items():
            if parameter is None or id(parameter) in seen:
                continue
            seen.add(id(parameter))
            slots.append(Slot(owner, name, parameter, offset))
            offset += -(-slots[-1].nbytes // ALIGNMENT) * ALIGNMENT
    return slots, offset
