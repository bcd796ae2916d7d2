"""tiercache.torch.offload on the small decoder, on the emulated device."""
import threading

import pytest
import torch

import tiercache
import tiercache.torch as tt
from tiny_decoder import make_model


def layer_bytes(model):
    return max(sum(p.numel() * p.element_size() for p in b.parameters())
               for b in model.trunk.blocks)


@pytest.fixture
def model():
    return make_model()


@pytest.fixture
def ids():
    torch.manual_seed(1)
    return torch.randint(0, 97, (2, 11))


def reference(model, ids):
    with torch.no_grad():
        return model(ids), model.generate(ids, 8)


def parameters_of(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_layers_are_found_by_structure(model):
    names = [name for name, _ in tt.decoder_layers(model)]
    assert names == [f"trunk.blocks.{i}" for i in range(4)]


def test_layers_not_found_is_a_clear_error():
    with pytest.raises(ValueError, match="no list of repeated layers"):
        tt.decoder_layers(torch.nn.Linear(4, 4))


@pytest.mark.parametrize("layers_on_gpu", [1, 2, 4])
def test_outputs_and_generate_match_the_model(model, ids, layers_on_gpu):
    logits, tokens = reference(model, ids)
    handle = tt.offload(model, gpu_budget=layers_on_gpu * layer_bytes(model) + 4096)
    with torch.no_grad():
        assert torch.equal(model(ids), logits)
    assert torch.equal(model.generate(ids, 8), tokens)
    stats = handle.stats()
    assert stats["blocks"]["registered"] == 4
    gpu = stats["tiers"][0]
    steps = 1 + 1 + 8  # forward, prefill, 8 decode steps: each acquires all 4 layers
    assert gpu["hits"] + gpu["misses"] == 4 * steps
    weights = handle.weight_bytes  # packed: each parameter at a 256-byte boundary
    if layers_on_gpu == 4:  # each block loaded once (by a miss or a prefetch), then resident
        assert gpu["misses"] <= 4 and gpu["evictions"] == 0
        assert gpu["bytes_in"] <= weights
    else:  # the layers take turns in the budget
        assert gpu["evictions"] > 0 and gpu["bytes_in"] > weights
    handle.close()


def test_parameters_hold_no_memory_while_offloaded(model):
    handle = tt.offload(model, gpu_budget=layer_bytes(model) + 4096)
    for name, p in model.trunk.blocks.named_parameters():
        assert p.data.storage().size() == 1, name  # an expanded scalar, shape kept
    assert model.trunk.blocks[0].q.weight.shape == (64, 64)
    handle.close()


def test_close_puts_the_weights_back(model, ids):
    before = parameters_of(model)
    identity = {n: p for n, p in model.named_parameters()}
    logits, _ = reference(model, ids)
    handle = tt.offload(model, gpu_budget=2 * layer_bytes(model) + 4096)
    with torch.no_grad():
        model(ids)
    handle.close()
    for name, p in model.named_parameters():
        assert p is identity[name]  # the same Parameter objects
        assert torch.equal(p, before[name]), name
        assert p.device == before[name].device
    assert not model.trunk.blocks[0]._forward_pre_hooks
    with torch.no_grad():
        assert torch.equal(model(ids), logits)
    with pytest.raises(tiercache.Error, match="closed"):
        handle.stats()
    handle.close()  # idempotent
    tt.offload(model, gpu_budget=4 * layer_bytes(model)).close()  # offloadable again


def test_chosen_modules_only(model, ids):
    logits, _ = reference(model, ids)
    chosen = [model.trunk.blocks[1], model.trunk.blocks[3]]
    handle = tt.offload(model, gpu_budget=layer_bytes(model), modules=chosen)
    assert sorted(handle.blocks) == ["trunk.blocks.1", "trunk.blocks.3"]
    assert model.trunk.blocks[0].q.weight.storage().size() == 64 * 64
    with torch.no_grad():
        assert torch.equal(model(ids), logits)
    handle.close()


def test_forwards_on_several_threads_at_once(model):
    torch.manual_seed(2)
    inputs = [torch.randint(0, 97, (1, 7 + i)) for i in range(4)]
    with torch.no_grad():
        expected = [model(x) for x in inputs]
    handle = tt.offload(model, gpu_budget=2 * layer_bytes(model) + 4096)
    results, errors = [None] * len(inputs), []
    start = threading.Barrier(len(inputs))

    def run(i):
        try:
            start.wait()
            with torch.no_grad():
                for _ in range(5):
                    results[i] = model(inputs[i])
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got, want in zip(results, expected):
        assert torch.equal(got, want)
    handle.close()


# ---- bad input: a clear error, and the model left as it was ------------------

def assert_untouched(model, before):
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]), name
        assert p.data.storage().size() == p.numel(), name
    assert not any(m._forward_pre_hooks for m in model.modules())


def test_budget_smaller_than_the_largest_block(model):
    before = parameters_of(model)
    with pytest.raises(tiercache.InvalidArgument, match="smaller than the largest block"):
        tt.offload(model, gpu_budget=layer_bytes(model) - 1)
    assert_untouched(model, before)


def test_offloaded_twice(model):
    handle = tt.offload(model, gpu_budget=4 * layer_bytes(model))
    with pytest.raises(tiercache.InvalidArgument, match="already offloaded"):
        tt.offload(model, gpu_budget=4 * layer_bytes(model))
    with pytest.raises(tiercache.InvalidArgument, match="already offloaded"):
        tt.offload(model.trunk, gpu_budget=4 * layer_bytes(model))
    handle.close()


def test_module_on_an_unexpected_device(model):
    model.trunk.blocks[2].up.to("meta")
    with pytest.raises(tiercache.InvalidArgument, match=r"trunk\.blocks\.2\.up\.weight is on meta"):
        tt.offload(model, gpu_budget=4 * layer_bytes(model))
    assert not any(m._forward_pre_hooks for m in model.modules())


def test_bad_home_and_budget(model):
    before = parameters_of(model)
    with pytest.raises(tiercache.InvalidArgument, match="home must be one of"):
        tt.offload(model, gpu_budget="1GiB", home="tape")
    with pytest.raises(tiercache.InvalidArgument, match="needs nvme_path"):
        tt.offload(model, gpu_budget="1GiB", home="nvme")
    with pytest.raises(ValueError, match="gpu_budget"):
        tt.offload(model, gpu_budget="lots")
    assert_untouched(model, before)


def test_closed_runtime_under_the_hooks(model, ids):
    handle = tt.offload(model, gpu_budget=4 * layer_bytes(model))
    handle.runtime.close()
    with pytest.raises(tiercache.Error, match="runtime is closed"):
        with torch.no_grad():
            model(ids)


def test_grad_mode_is_refused(model, ids):
    handle = tt.offload(model, gpu_budget=4 * layer_bytes(model))
    with pytest.raises(tiercache.InvalidArgument, match="no_grad"):
        model(ids)
    handle.close()


def test_nvme_home(model, ids, tmp_path):
    logits, tokens = reference(model, ids)
    handle = tt.offload(model, gpu_budget=layer_bytes(model) + 4096, home="nvme",
                        nvme_path=tmp_path, config={"nvme_direct": False})
    with torch.no_grad():
        assert torch.equal(model(ids), logits)
    assert torch.equal(model.generate(ids, 8), tokens)
    tiers = {t["name"]: t for t in handle.stats()["tiers"]}
    assert tiers["nvme"]["bytes_out"] > 0
    handle.close()
    with torch.no_grad():
        assert torch.equal(model(ids), logits)


@pytest.mark.parametrize("home", ["dram", "nvme"])
def test_compressed_blocks_give_identical_outputs(ids, tmp_path, home):
    model = make_model(dtype=torch.bfloat16)
    logits, tokens = reference(model, ids)
    options = {"nvme_path": tmp_path, "config": {"nvme_direct": False}} if home == "nvme" else {}
    handle = tt.offload(model, gpu_budget=layer_bytes(model) + 4096, home=home, compression="bf16",
                        **options)
    with torch.no_grad():
        assert torch.equal(model(ids), logits)
    assert torch.equal(model.generate(ids, 8), tokens)
    codec = handle.stats()["codec"]
    assert codec["blocks"] == 4
    assert codec["ratio"] < 0.9  # bf16 weights: the home holds less than their size
    assert codec["decoded_bytes"] > codec["moved_bytes"] > 0
    handle.close()
    with torch.no_grad():
        assert torch.equal(model(ids), logits)


def test_bad_compression_is_refused(model):
    with pytest.raises(tiercache.InvalidArgument, match="compression must be one of"):
        tt.offload(model, gpu_budget="1GiB", compression="zstd")
    with pytest.raises(tiercache.InvalidArgument, match="disagrees"):
        tt.offload(model, gpu_budget="1GiB", compression="bf16", config={"compression": "off"})
    assert not model.trunk.blocks[0]._forward_pre_hooks  # the model was left as it was


def test_the_prefetcher_learns_the_layer_order_without_hints(model, ids):
    """Through the adapter alone (no hints, defaults): after the first step
    the runtime prefetches the next layers and those prefetches are used."""
    handle = tt.offload(model, gpu_budget=2 * layer_bytes(model) + 4096)
    with torch.no_grad():
        for _ in range(6):
            model(ids)
    stats = handle.stats()
    prefetch = stats["prefetch"]
    assert prefetch["mode"] == "learn"
    assert prefetch["issued"] > 0 and prefetch["useful"] > 0, prefetch
    assert prefetch["accuracy"] > 0.5, prefetch
    handle.close()
