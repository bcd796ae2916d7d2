"""tiercache.torch.offload_activations on a training step, on the emulated device."""
import gc

import pytest
import torch

import tiercache
import tiercache.torch as tt
from tiny_decoder import make_model

RING = 64 << 20


@pytest.fixture
def model():
    return make_model().train()


@pytest.fixture
def ids():
    torch.manual_seed(3)
    return torch.randint(0, 97, (4, 33))


def gradients(model, ids, offload=None):
    model.zero_grad(set_to_none=True)
    if offload is None:
        loss = model(ids).float().pow(2).mean()
    else:
        with offload:
            loss = model(ids).float().pow(2).mean()
    loss.backward()  # outside the context: the runtime stays open
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_gradients_are_bit_identical(model, ids):
    want = gradients(model, ids)
    offload = tt.offload_activations(min_bytes=4096, dram_bytes=RING + (32 << 20))
    got = gradients(model, ids, offload)
    for name in want:
        assert torch.equal(got[name], want[name]), name
    stats = offload.stats()["activations"]
    assert stats["saves"] == offload.saved > 0
    assert stats["restores"] == stats["saves"]
    assert stats["prefetched_restores"] > 0  # restored ahead of backward's request
    assert stats["live"] == 0 and stats["host_bytes"] == 0
    # A second step through the same runtime.
    again = gradients(model, ids, offload)
    for name in want:
        assert torch.equal(again[name], want[name]), name
    offload.close()


def test_a_pending_bound_keeps_what_the_link_has_no_time_for(model, ids):
    want = gradients(model, ids)
    unbounded = tt.offload_activations(min_bytes=4096, dram_bytes=RING + (32 << 20))
    gradients(model, ids, unbounded)
    eligible = unbounded.saved
    unbounded.close()
    # A bound of one byte: a save goes only when no other is still copying.
    offload = tt.offload_activations(min_bytes=4096, dram_bytes=RING + (32 << 20), pending_bytes=1)
    got = gradients(model, ids, offload)
    for name in want:
        assert torch.equal(got[name], want[name]), name
    stats = offload.stats()["activations"]
    assert stats["saves"] == offload.saved > 0
    assert stats["saves"] + stats["refused_pending"] == eligible
    assert stats["live"] == 0
    offload.close()
    with pytest.raises(ValueError, match="pending_bytes"):
        tt.offload_activations(pending_bytes="lots")


def test_parameters_and_small_tensors_are_left_alone(model, ids):
    offload = tt.offload_activations(min_bytes=1 << 30, dram_bytes=RING + (1 << 20))
    gradients(model, ids, offload)
    assert offload.saved == 0 and offload.skipped > 0
    assert offload.stats()["activations"]["saves"] == 0
    offload.close()

    offload = tt.offload_activations(min_bytes=1, dram_bytes=RING + (32 << 20))
    seen = []
    original = offload._pack
    offload._pack = lambda t: (seen.append(t), original(t))[1]
    with offload:
        model(ids).sum()
    parameters = {id(p) for p in model.parameters()}
    left = [t for t in seen if id(t) in parameters]
    assert left and offload.skipped >= len(left)  # the weights are saved, never offloaded
    offload.close()


def test_strided_views_come_back_with_their_strides():
    a = torch.randn(64, 48, requires_grad=True)
    b = torch.randn(64, 40, requires_grad=True)

    def step(offload=None):
        a.grad = b.grad = None
        if offload is None:
            x = (a * 2).t()  # a non-contiguous activation, saved by mm
            loss = (x @ (b * 3)).sin().sum()
        else:
            with offload:
                x = (a * 2).t()
                loss = (x @ (b * 3)).sin().sum()
        loss.backward()
        return a.grad.clone(), b.grad.clone()

    want = step()
    offload = tt.offload_activations(min_bytes=1024, dram_bytes=RING + (4 << 20))
    got = step(offload)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert offload.saved >= 2
    offload.close()


def test_dropped_graph_discards_its_activations(model, ids):
    offload = tt.offload_activations(min_bytes=4096, dram_bytes=RING + (32 << 20))
    with offload:
        loss = model(ids).float().pow(2).mean()
    assert offload.stats()["activations"]["live"] > 0
    del loss
    gc.collect()
    assert offload.stats()["activations"]["live"] == 0
    offload.close()


def test_spills_to_nvme_when_dram_is_full(model, ids, tmp_path):
    want = gradients(model, ids)
    offload = tt.offload_activations(min_bytes=4096, dram_bytes=RING + (256 << 10),
                                     nvme_path=tmp_path, nvme_bytes="64MiB",
                                     config={"nvme_direct": False})
    got = gradients(model, ids, offload)
    for name in want:
        assert torch.equal(got[name], want[name]), name
    stats = offload.stats()["activations"]
    assert stats["spills"] > 0 and stats["restores"] == stats["saves"]
    offload.close()


def test_no_room_anywhere_keeps_the_tensors(model, ids):
    want = gradients(model, ids)
    offload = tt.offload_activations(min_bytes=4096, dram_bytes=RING + 8192)
    got = gradients(model, ids, offload)
    for name in want:
        assert torch.equal(got[name], want[name]), name
    assert offload.skipped > 0
    offload.close()


def test_closed_runtime_and_bad_options():
    offload = tt.offload_activations(dram_bytes=RING + (1 << 20))
    offload.close()
    with pytest.raises(tiercache.Error, match="closed"):
        with offload:
            pass
    with pytest.raises(ValueError, match="min_bytes"):
        tt.offload_activations(min_bytes="big")
    with pytest.raises(ValueError, match="ahead"):
        tt.offload_activations(ahead=-1)
