#!/usr/bin/env bash
# run_pytest.sh <python> <package dir>: the package's pytest suite, or exit 77
# (CTest's skip) when that Python lacks torch, numpy or pytest.
set -u
python=$1
package=$2
if ! "$python" -c 'import torch, numpy, pytest' 2>/dev/null; then
  echo "python_package_test: $python lacks torch, numpy or pytest; skipped"
  exit 77
fi
cd "$package" || exit 1
exec "$python" -m pytest -q -p no:cacheprovider tests
