"""A PEP 517 backend for a pure-Python package, with no build dependencies.

Builds `tiercache-<version>-py3-none-any.whl` from the `tiercache/` folder
beside it (every .py file), and a matching sdist. The metadata comes from
pyproject.toml's [project] table (name, version, description,
requires-python, optional dependencies).
"""
import base64
import hashlib
import os
import tarfile
import zipfile

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _project():
    path = os.path.join(ROOT, "pyproject.toml")
    if tomllib is not None:
        with open(path, "rb") as f:
            return tomllib.load(f)["project"]
    project = {}  # the few plain `key = "value"` lines this file has
    with open(path) as f:
        section = None
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[project]" and "=" in line and line.split("=", 1)[1].strip().startswith('"'):
                key, value = line.split("=", 1)
                project[key.strip()] = value.strip().strip('"')
    return project


def _metadata():
    p = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}",
             f"Summary: {p.get('description', '')}"]
    if "requires-python" in p:
        lines.append(f"Requires-Python: {p['requires-python']}")
    for extra, requirements in p.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {r}; extra == "{extra}"' for r in requirements]
    return p, "\n".join(lines) + "\n"


def _sources():
    for folder, _, files in os.walk(os.path.join(ROOT, "tiercache")):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                yield path, os.path.relpath(path, ROOT)


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    project, metadata = _metadata()
    info = f"{project['name']}-{project['version']}.dist-info"
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    with open(os.path.join(metadata_directory, info, "METADATA"), "w") as f:
        f.write(metadata)
    return info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project, metadata = _metadata()
    name, version = project["name"], project["version"]
    info = f"{name}-{version}.dist-info"
    wheel_name = f"{name}-{version}-py3-none-any.whl"
    records = []
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w",
                         zipfile.ZIP_DEFLATED) as wheel:
        def add(arcname, data):
            wheel.writestr(arcname, data)
            records.append(_record_line(arcname, data))

        for path, arcname in _sources():
            with open(path, "rb") as f:
                add(arcname, f.read())
        add(f"{info}/METADATA", metadata.encode())
        add(f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: tiercache wheel_backend\n"
                             b"Root-Is-Purelib: true\nTag: py3-none-any\n")
        records.append(f"{info}/RECORD,,")
        wheel.writestr(f"{info}/RECORD", "\n".join(records) + "\n")
    return wheel_name


def build_sdist(sdist_directory, config_settings=None):
    project, metadata = _metadata()
    base = f"{project['name']}-{project['version']}"
    with tarfile.open(os.path.join(sdist_directory, base + ".tar.gz"), "w:gz") as sdist:
        for path, arcname in _sources():
            sdist.add(path, f"{base}/{arcname}")
        for extra in ("pyproject.toml", "_build/wheel_backend.py"):
            sdist.add(os.path.join(ROOT, extra), f"{base}/{extra}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        data = metadata.encode()
        info.size = len(data)
        import io
        sdist.addfile(info, io.BytesIO(data))
    return base + ".tar.gz"
