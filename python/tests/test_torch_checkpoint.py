"""tiercache.torch.offload(checkpoint=...): a weightless model served from a
safetensors checkpoint read in place, on the emulated device. The checkpoints
are written here with struct and json (the format is an 8-byte length, a JSON
header and the raw bytes)."""
import json
import os
import struct

import pytest
import torch

import tiercache
import tiercache.torch as tt
from tiny_decoder import make_model

_NAMES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


def write_safetensors(path, tensors):
    """tensors: {name: tensor}, stored in name order."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_sharded(directory, state, shards=2):
    """Splits `state` in name order over `shards` files plus an index."""
    names = sorted(state)
    per = -(-len(names) // shards)
    weight_map = {}
    for i in range(shards):
        file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = names[i * per:(i + 1) * per]
        write_safetensors(os.path.join(directory, file), {n: state[n] for n in part})
        weight_map.update({n: file for n in part})
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)


def weightless(model):
    """The same model with every parameter on the meta device (buffers stay real,
    tied parameters stay tied)."""
    made = {}
    for module in model.modules():
        for key, p in list(module._parameters.items()):
            if p is not None:
                if id(p) not in made:
                    made[id(p)] = torch.nn.Parameter(p.to("meta"), requires_grad=False)
                module._parameters[key] = made[id(p)]
    return model


def layer_bytes(model):
    return max(sum(p.numel() * p.element_size() for p in b.parameters())
               for b in model.trunk.blocks) + 16 * 4096


@pytest.fixture
def ids():
    torch.manual_seed(1)
    return torch.randint(0, 97, (2, 11))


@pytest.fixture(params=[torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def dtype(request):
    return request.param


@pytest.mark.parametrize("layers_on_gpu", [1, 4])
@pytest.mark.parametrize("pinned", [True, False], ids=["pinned-page-cache", "staged"])
def test_a_weightless_model_runs_from_the_checkpoint(tmp_path, ids, dtype, layers_on_gpu, pinned):
    model = make_model(dtype=dtype)
    with torch.no_grad():
        logits = model(ids)
    tokens = model.generate(ids, 5)
    write_sharded(str(tmp_path), model.state_dict())
    empty = weightless(make_model(dtype=dtype, seed=5))
    # The files were just written: in the page cache, so pinned for DMA by default.
    handle = tt.offload(empty, checkpoint=str(tmp_path),
                        gpu_budget=layers_on_gpu * layer_bytes(empty),
                        config={"checkpoint_pin_page_cache": "on" if pinned else "off"})
    assert all(not p.is_meta for p in empty.parameters())
    with torch.no_grad():
        assert torch.equal(empty(ids), logits)
    assert torch.equal(empty.generate(ids, 5), tokens)
    assert len(handle.checkpoint["files"]) == 2
    stats = handle.stats()
    assert stats["blocks"]["registered"] == 4  # the layers; embeddings etc. were dropped once read
    read = stats["checkpoints"][0]
    if pinned:
        assert read["pinned_bytes"] > 0
        assert read["mapped_bytes"] >= handle.checkpoint["tensor_bytes"]
        assert read["bytes_read"] == 0  # copied from the page cache, never on the host
    else:
        assert read["pinned_bytes"] == 0
        assert read["bytes_read"] >= handle.checkpoint["tensor_bytes"]
    handle.close()
    with torch.no_grad():
        assert torch.equal(empty(ids), logits)  # close() leaves the weights on the device


def test_tied_weights_follow_the_tensor_they_are_tied_to(tmp_path, ids):
    model = make_model()
    model.head.weight = model.trunk.embed.weight
    with torch.no_grad():
        logits = model(ids)
    state = {k: v for k, v in model.state_dict().items() if k != "head.weight"}
    write_safetensors(str(tmp_path / "model.safetensors"), state)
    empty = make_model(seed=3)
    empty.head.weight = empty.trunk.embed.weight
    weightless(empty)
    assert empty.head.weight is empty.trunk.embed.weight
    handle = tt.offload(empty, checkpoint=str(tmp_path / "model.safetensors"),
                        gpu_budget=2 * layer_bytes(empty))
    assert empty.head.weight is empty.trunk.embed.weight
    with torch.no_grad():
        assert torch.equal(empty(ids), logits)
    handle.close()


def test_mismatches_are_clear_errors_and_leave_the_model_as_it_was(tmp_path):
    model = make_model()
    state = model.state_dict()
    path = str(tmp_path / "model.safetensors")

    def attempt(state, **kwargs):
        write_safetensors(path, state)
        empty = weightless(make_model(**kwargs))
        with pytest.raises(tiercache.InvalidArgument) as error:
            tt.offload(empty, checkpoint=path, gpu_budget=4 * layer_bytes(empty))
        assert all(p.is_meta for p in empty.parameters()), "the model is unchanged"
        assert not hasattr(empty, "_tiercache_offload")
        return str(error.value)

    assert "trunk.blocks.2.up.weight is not in the checkpoint" in attempt(
        {k: v for k, v in state.items() if k != "trunk.blocks.2.up.weight"})
    assert "head.weight is not in the checkpoint" in attempt(
        {k: v for k, v in state.items() if k != "head.weight"})
    assert "BF16" in attempt({k: v.to(torch.bfloat16) for k, v in state.items()})
    assert "shape" in attempt(state, hidden=128)
    with open(path, "r+b") as f:  # a header that lies about a size
        f.seek(8)
        text = f.read(200).replace(b'"F32"', b'"F16"', 1)
        f.seek(8)
        f.write(text)
    empty = weightless(make_model())
    with pytest.raises(tiercache.InvalidArgument, match="safetensors"):
        tt.offload(empty, checkpoint=path, gpu_budget=4 * layer_bytes(empty))


def test_a_meta_buffer_outside_the_checkpoint_is_named(tmp_path):
    model = make_model()
    write_safetensors(str(tmp_path / "model.safetensors"), model.state_dict())
    empty = weightless(make_model())
    block = empty.trunk.blocks[1]
    block._buffers["inv_freq"] = block.inv_freq.to("meta")
    with pytest.raises(tiercache.InvalidArgument, match="init_empty_weights"):
        tt.offload(empty, checkpoint=str(tmp_path), gpu_budget=4 * layer_bytes(empty))


def test_a_checkpoint_changed_after_registration_fails_the_forward(tmp_path, ids):
    model = make_model()
    write_safetensors(str(tmp_path / "model.safetensors"), model.state_dict())
    empty = weightless(make_model())
    handle = tt.offload(empty, checkpoint=str(tmp_path), gpu_budget=layer_bytes(empty),
                        prefetch=False)
    os.utime(tmp_path / "model.safetensors", (1000, 1000))
    with torch.no_grad(), pytest.raises(tiercache.Corruption, match="changed since"):
        empty(ids)
    handle.runtime.close()  # close() would read the changed file to restore the weights


@pytest.mark.parametrize("compression", [None, "bf16"])
def test_warm_restart_reads_the_blocks_from_pmem(tmp_path, ids, compression):
    model = make_model(dtype=torch.bfloat16 if compression else torch.float32)
    with torch.no_grad():
        logits = model(ids)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    write_sharded(str(ckpt), model.state_dict())
    pmem = tmp_path / "pmem"
    pmem.mkdir()
    persisted = []
    for _ in range(2):  # two "processes": the second finds every layer in PMEM
        empty = weightless(make_model(seed=9, dtype=next(model.parameters()).dtype))
        handle = tt.offload(empty, checkpoint=str(ckpt), gpu_budget=4 * layer_bytes(empty),
                            pmem_path=str(pmem), pmem_bytes="8MiB", compression=compression)
        with torch.no_grad():
            assert torch.equal(empty(ids), logits)
        layers = [b for b in handle.checkpoint["blocks"] if ".blocks." in b["name"]]
        persisted.append([b["persisted"] for b in layers])
        codec = handle.stats()["codec"]
        if compression:  # the PMEM copies hold the encoding, in both processes
            assert codec["blocks"] >= 4
            assert codec["ratio"] < 0.9
            assert codec["decoded_bytes"] > codec["moved_bytes"] > 0
        else:
            assert codec["blocks"] == 0
        handle.close()
    assert persisted == [[False] * 4, [True] * 4]


def test_checkpoint_options_are_checked(tmp_path):
    model = make_model()
    write_safetensors(str(tmp_path / "model.safetensors"), model.state_dict())
    empty = weightless(make_model())
    with pytest.raises(tiercache.InvalidArgument, match="home="):
        tt.offload(empty, checkpoint=str(tmp_path), gpu_budget="1GiB", home="nvme")
    with pytest.raises(tiercache.InvalidArgument, match="unknown option"):
        tt.offload(empty, checkpoint=str(tmp_path), gpu_budget="1GiB", nvme_path="/tmp")
    with pytest.raises(tiercache.NotFound):
        tt.offload(empty, checkpoint=str(tmp_path / "absent"), gpu_budget="1GiB")
    with pytest.raises(tiercache.InvalidArgument, match="PMEM copies"):
        tt.offload(empty, checkpoint=str(tmp_path), gpu_budget="1GiB", compression="bf16")
