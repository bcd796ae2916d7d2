"""The ctypes binding: loading, version, calls, errors."""
import ctypes
import os
import subprocess
import sys

import pytest

import tiercache

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RING = 64 << 20  # the staging ring the DRAM tier carries (4 x 16 MiB)


@pytest.fixture
def runtime():
    rt = tiercache.Runtime(dram_bytes=RING + (8 << 20), gpu_cache_bytes="4MiB")
    yield rt
    rt.close()


def test_library_version_matches_the_package():
    assert tiercache.library_version() == tiercache.__version__
    assert os.path.exists(tiercache.library_path())


def test_register_acquire_returns_the_bytes(runtime):
    data = bytes(range(256)) * 4096
    block = runtime.register(data, home="dram", name="weights")
    assert runtime.find_block("weights") == block
    assert runtime.block_size(block) == len(data)
    address = runtime.acquire(block)
    runtime.synchronize()
    assert ctypes.string_at(address, len(data)) == data
    runtime.release(block)
    stats = runtime.stats()
    assert stats["blocks"]["registered"] == 1
    assert stats["tiers"][0]["name"] == "gpu" and stats["tiers"][0]["misses"] == 1


def test_errors_carry_the_library_message(runtime):
    with pytest.raises(tiercache.NotFound, match="tiercache_acquire: .*no block 12345"):
        runtime.acquire(12345)
    with pytest.raises(tiercache.NotFound, match="no tier named .tape."):
        runtime.register(b"x" * 4096, home="tape")
    with pytest.raises(tiercache.OutOfSpace, match="dram"):
        runtime.register(bytes(64 << 20), home="dram")


def test_unknown_config_key_names_the_key():
    with pytest.raises(tiercache.NotFound, match="no_such_key"):
        tiercache.Runtime(no_such_key=1)


def test_closed_runtime_raises():
    rt = tiercache.Runtime(dram_bytes=RING + (1 << 20))
    rt.close()
    rt.close()  # idempotent
    with pytest.raises(tiercache.Error, match="closed"):
        rt.stats()
    with pytest.raises(tiercache.Error, match="closed"):
        rt.register(b"x" * 64)


def test_save_and_restore_round_trip(runtime):
    payload = os.urandom(1 << 20)
    host = ctypes.create_string_buffer(payload, len(payload))
    device = runtime.device_alloc(len(payload))
    runtime.copy_to_device(device, ctypes.addressof(host), len(payload))
    handle = runtime.save(device, len(payload))  # frees `device` behind the copy
    restored = runtime.restore(handle)
    back = ctypes.create_string_buffer(len(payload))
    runtime.copy_to_host(ctypes.addressof(back), restored, len(payload))
    runtime.synchronize()
    assert back.raw == payload
    runtime.device_free(restored)
    with pytest.raises(tiercache.NotFound):
        runtime.restore(handle)  # consumed


def test_preload_stats_without_the_preload_library():
    with pytest.raises(tiercache.Unavailable, match="tiercache_preload_stats_json"):
        tiercache.preload_stats()


def _python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": PYTHON_DIR, **env})


def test_explicit_library_path_is_used_or_reported():
    done = _python("import tiercache; print(tiercache.library_path())",
                   TIERCACHE_LIBRARY=tiercache.library_path())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == tiercache.library_path()
    missing = _python("import tiercache; tiercache.library_version()",
                      TIERCACHE_LIBRARY="/nonexistent/libtiercache.so")
    assert missing.returncode != 0
    assert "libtiercache not found" in missing.stderr
    assert "/nonexistent/libtiercache.so (no such file)" in missing.stderr
