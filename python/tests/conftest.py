"""The adapter's tests run on the emulated device (host memory as device memory)."""
import os
import sys

os.environ.setdefault("TIERCACHE_DEVICE", "emulated")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
