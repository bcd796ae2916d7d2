"""Weight offload straight from a safetensors checkpoint, read in place.

``offload(model, checkpoint=path, gpu_budget=...)`` takes a model built
without weights (on the meta device, e.g. under ``accelerate.init_empty_weights()``
so that buffers stay real) and registers the checkpoint's tensors with
tiercache: one block per decoder layer, homed on the checkpoint's files
(nothing is read then). Each layer's parameters then point at views of its
block whenever a forward holds it (the hooks of ``_weights``). Every other
parameter (embeddings, norms, lm_head) is read through the same engine, one
tensor block at a time, straight into a tensor on the compute device; its
block is unregistered afterwards. The model never exists as host tensors.

Parameters are matched to tensors by qualified name (``model.layers.3.mlp.up_proj.weight``);
a parameter tied to another (lm_head and the embedding) follows the one it
is tied to. A name missing from the checkpoint, or a dtype or shape that
differs from the model's, is an InvalidArgument error naming it, and the
model is left as it was.

Thread safety: as ``offload``.
"""
import torch

from .. import _errors
from ..runtime import Runtime
from . import _layers, _memory, _weights
from ._sizes import parse_bytes

__all__ = ["offload_checkpoint", "TORCH_DTYPES"]

TORCH_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32,
                "F64": torch.float64, "I64": torch.int64, "I32": torch.int32,
                "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def _fail(message):
    return _errors.InvalidArgument(-1, f"offload: {message}")


def _nbytes(parameter):
    return parameter.numel() * parameter.element_size()


def _owned_parameters(module, prefix):
    """[(qualified name, owner, attribute, parameter)] including tied repeats."""
    out = []
    for name, owner in module.named_modules(remove_duplicate=False):
        for attribute, parameter in owner._parameters.items():
            if parameter is not None:
                full = ".".join(part for part in (prefix, name, attribute) if part)
                out.append((full, owner, attribute, parameter))
    return out


def _check_tensor(name, parameter, tensor):
    dtype = TORCH_DTYPES.get(tensor["dtype"])
    if dtype is None:
        raise _fail(f"{name}: the checkpoint's dtype {tensor['dtype']} has no torch dtype")
    if dtype != parameter.dtype:
        raise _fail(f"{name}: the checkpoint holds {tensor['dtype']}, the model wants "
                    f"{parameter.dtype}; build the model with that dtype")
    if tuple(tensor["shape"]) != tuple(parameter.shape):
        raise _fail(f"{name}: the checkpoint's shape {tuple(tensor['shape'])} is not the "
                    f"model's {tuple(parameter.shape)}")


def _runtime_config(budget, largest, options, user):
    chunk = parse_bytes(user.get("chunk_bytes", 16 << 20), "chunk_bytes")
    ring = int(user.get("staging_buffers", 4)) * chunk
    pool = budget + largest + (64 << 20) + _weights.encoded_ring_bytes(user, chunk)
    config = {"gpu_cache_bytes": budget, "gpu_budget_bytes": pool,
              "dram_bytes": ring + parse_bytes(options.get("dram_room", 0), "dram_room")}
    if options.get("pmem_path"):
        config["pmem_path"] = str(options["pmem_path"])
        config["pmem_bytes"] = parse_bytes(options.get("pmem_bytes", 0), "pmem_bytes")
        if config["pmem_bytes"] == 0:
            raise _fail("pmem_path= needs pmem_bytes= (the tier's size)")
    config.update(user)
    return config


def offload_checkpoint(model, checkpoint, gpu_budget, modules=None, config=None, **options):
    """See ``tiercache.torch.offload`` (checkpoint=...)."""
    if not isinstance(model, torch.nn.Module):
        raise _fail(f"expected a torch.nn.Module, got {type(model).__name__}")
    unknown = set(options) - {"pmem_path", "pmem_bytes", "dram_room", "prefetch", "group_prefix"}
    if unknown:
        raise _fail(f"unknown option(s) with checkpoint=: {', '.join(sorted(unknown))}")
    budget = parse_bytes(gpu_budget, "gpu_budget")
    chosen = _layers.decoder_layers(model) if modules is None else [
        m if isinstance(m, tuple) else ({id(x): n for n, x in model.named_modules()}[id(m)], m)
        for m in modules]
    for target in [model] + [m for _, m in chosen]:
        if getattr(target, _weights._MARK, None) is not None:
            raise _fail("the model is already offloaded; close its handle first")
    device = _weights._expected_device()
    inside = {id(p) for _, m in chosen for p in m.parameters()}
    everything = _owned_parameters(model, "")
    outside = [entry for entry in everything if id(entry[3]) not in inside]
    largest = max([sum(_nbytes(p) for p in m.parameters()) + 4096 * len(list(m.parameters()))
                   for _, m in chosen] + [_nbytes(e[3]) + 4096 for e in outside] + [1])
    if budget < largest:
        raise _fail(f"gpu_budget {budget} bytes is smaller than the largest block "
                    f"(about {largest} bytes)")
    runtime = Runtime(_runtime_config(budget, largest, options, dict(config or {})))
    try:
        if runtime.emulated != (device.type == "cpu"):
            raise _fail(f"the runtime's device ({'emulated' if runtime.emulated else 'cuda'}) "
                        f"does not match PyTorch's ({device})")
        table = runtime.register_safetensors(
            checkpoint, group_prefix=options.get("group_prefix"),
            persist="pmem" if options.get("pmem_path") else None)
        plan = _plan(table, chosen, outside, device)
        if options.get("prefetch", True):
            _prefetch_layers(runtime, plan, budget)
        replaced = _load_outside(runtime, table, outside, device)
        _load_buffers(model, table, device, runtime)
    except BaseException:
        runtime.close()
        raise
    # Only now is the model changed.
    for old, new in replaced.items():
        for _, owner, attribute, parameter in everything:
            if id(parameter) == old:
                owner._parameters[attribute] = new
    handle = _weights.OffloadHandle(model, runtime, [], device)
    handle.checkpoint = table
    for name, module, slots, block, nbytes in plan:
        entry = _weights._Entry(name, module, [], nbytes)
        entry.block = block
        for owner, attribute, parameter, offset in slots:
            placeholder = torch.nn.Parameter(handle._placeholder_of(parameter.dtype, parameter.shape),
                                             requires_grad=False)
            owner._parameters[attribute] = placeholder
            slot = _layers.Slot(owner, attribute, placeholder, offset)
            slot.home_device = device
            entry.slots.append(slot)
        handle._entries.append(entry)
        handle._install(entry)
        setattr(module, _weights._MARK, handle)
    setattr(model, _weights._MARK, handle)
    return handle


def _plan(table, chosen, outside, device):
    """[(layer name, module, [(owner, attribute, parameter, offset)], block, bytes)]."""
    tensors = {t["name"]: t for t in table["tensors"]}
    blocks = {b["name"]: b for b in table["blocks"]}
    plan = []
    for name, module in chosen:
        block = blocks.get(name)
        if block is None:
            raise _fail(f"the checkpoint has no block {name!r} for layer {name} (its blocks: "
                        f"{', '.join(list(blocks)[:4])}, ...)")
        slots, seen = [], set()
        for full, owner, attribute, parameter in _owned_parameters(module, name):
            if id(parameter) in seen:
                continue
            seen.add(id(parameter))
            tensor = tensors.get(full)
            if tensor is None:
                raise _fail(f"{full} is not in the checkpoint")
            _check_tensor(full, parameter, tensor)
            if tensor["block"] != block["id"]:
                raise _fail(f"{full} is stored in another block than its layer's")
            slots.append((owner, attribute, parameter, tensor["offset"]))
        if not slots:
            raise _fail(f"{name} has no parameters")
        plan.append((name, module, slots, block["id"], block["bytes"]))
    for full, _, _, parameter in outside:
        if full in tensors:
            _check_tensor(full, parameter, tensors[full])
    return plan


def _prefetch_layers(runtime, plan, budget):
    """Starts reading the first layers that fit the budget, in order, so that the
    first forward finds them coming: reads overlap the rest of the loading."""
    order, room = [], budget
    for _, _, _, block, nbytes in plan:
        if nbytes > room:
            break
        order.append(block)
        room -= nbytes
    if order:
        runtime.prefetch(order)


def _read_tensor(runtime, tensor, device):
    """A new tensor on `device` holding the checkpoint tensor's bytes (via its block)."""
    dtype = TORCH_DTYPES[tensor["dtype"]]
    out = torch.empty(tuple(tensor["shape"]), dtype=dtype, device=device)
    if tensor["block"] is None:
        return out
    stream = _memory.current_stream(runtime, device)
    address = runtime.acquire(tensor["block"], stream)
    if runtime.emulated:
        runtime.synchronize(stream)
    flat = _memory.byte_view(address, tensor["offset"] + tensor["bytes"], device)
    out.copy_(_memory.typed_view(flat, tensor["offset"], dtype, tuple(tensor["shape"])))
    del flat
    runtime.release(tensor["block"], stream)
    return out


def _drop_own_block(runtime, table, tensor):
    """Unregisters a tensor's block once read, when the block holds it alone."""
    if tensor["block"] is None:
        return
    for block in table["blocks"]:
        if block["id"] == tensor["block"] and block["name"] == tensor["name"]:
            runtime.unregister(tensor["block"])
            return


def _load_outside(runtime, table, outside, device):
    """{id(old parameter): new Parameter on device} for every parameter outside
    the offloaded layers; each tensor's block is dropped once copied."""
    tensors = {t["name"]: t for t in table["tensors"]}
    replaced, wanted = {}, []
    for full, _, _, parameter in outside:
        if id(parameter) in replaced or full not in tensors:
            continue
        replaced[id(parameter)] = None
        wanted.append((full, parameter))
    missing = [full for full, _, _, p in outside if id(p) not in replaced]
    if missing:
        raise _fail(f"{missing[0]} is not in the checkpoint (and not tied to a parameter that is)")
    blocks = [tensors[full]["block"] for full, _ in wanted if tensors[full]["block"] is not None]
    if blocks:
        runtime.prefetch(blocks)
    for full, parameter in wanted:
        data = _read_tensor(runtime, tensors[full], device)
        replaced[id(parameter)] = torch.nn.Parameter(data, requires_grad=parameter.requires_grad)
        _drop_own_block(runtime, table, tensors[full])
    return replaced


def _load_buffers(model, table, device, runtime):
    """Buffers go to the device; meta buffers come from the checkpoint or are an error."""
    tensors = {t["name"]: t for t in table["tensors"]}
    updates = []
    for name, owner in model.named_modules():
        for key, buffer in owner._buffers.items():
            if buffer is None:
                continue
            full = f"{name}.{key}" if name else key
            if buffer.is_meta:
                if full not in tensors:
                    raise _fail(f"buffer {full} is on the meta device and not in the checkpoint; "
                                "build the model with accelerate.init_empty_weights() (buffers "
                                "stay real)")
                updates.append((owner, key, _read_tensor(runtime, tensors[full], device)))
                _drop_own_block(runtime, table, tensors[full])
            elif buffer.device != device:
                updates.append((owner, key, buffer.to(device)))
    for owner, key, value in updates:
        owner._buffers[key] = value
