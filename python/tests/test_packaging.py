"""The wheel `pip install ./python` builds: every module, metadata, no build dependencies."""
import os
import subprocess
import sys
import zipfile

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(PYTHON_DIR, "_build"))

import wheel_backend  # noqa: E402


def test_wheel_holds_the_package_and_imports_from_elsewhere(tmp_path):
    assert wheel_backend.get_requires_for_build_wheel() == []
    name = wheel_backend.build_wheel(str(tmp_path))
    assert name == "tiercache-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(tmp_path / name) as wheel:
        names = set(wheel.namelist())
        record = wheel.read("tiercache-0.1.0.dist-info/RECORD").decode()
        wheel.extractall(tmp_path / "site")
    for module in ("tiercache/__init__.py", "tiercache/_lib.py", "tiercache/runtime.py",
                   "tiercache/torch/__init__.py", "tiercache/torch/_weights.py",
                   "tiercache/torch/_activations.py"):
        assert module in names and module in record
    assert not any("tests" in n or "__pycache__" in n for n in names)
    done = subprocess.run(
        [sys.executable, "-c", "import tiercache, tiercache.torch; print(tiercache.__file__); "
                               "print(tiercache.library_version())"],
        capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith(str(tmp_path / "site"))
    assert done.stdout.splitlines()[1] == "0.1.0"
