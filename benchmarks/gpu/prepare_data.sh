#!/usr/bin/env bash
# Put a CIFAR-10 subset where the device run finds it, HERE (on the development machine), once,
# in the repository root of the checkout the device tool sends:
#     bash benchmarks/gpu/prepare_data.sh [N_TRAIN_BATCHES=1] [N_TEST=2000]
# Writes .gpu_data/cifar10/{data_batch_*.bin.gz, test_subset.npz} (~28 MB per training batch,
# ~6 MB of test images) and adds /.gpu_data/ to .git/info/exclude; name `.gpu_data` in the run
# tool's `carry` (the whole working tree that travels must stay under 64 MiB: one batch fits).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
N_BATCHES=${1:-1}
N_TEST=${2:-2000}
SRC=${DEEPGRAD_DATA:-$(cd .. && pwd)/shared/datasets}/cifar10
[ -d "$SRC" ] || SRC=/work/shared/datasets/cifar10
DST=.gpu_data/cifar10
mkdir -p "$DST"
EXCL="$(git rev-parse --git-common-dir)/info/exclude"
grep -qx '/.gpu_data/' "$EXCL" 2>/dev/null || echo '/.gpu_data/' >> "$EXCL"
for i in $(seq 1 "$N_BATCHES"); do cp "$SRC/data_batch_$i.bin.gz" "$DST/"; done
PY=${PYTHON:-python3}
"$PY" - "$SRC/test_batch.bin.gz" "$DST/test_subset.npz" "$N_TEST" <<'EOF'
import gzip, sys
import numpy as np
raw = np.frombuffer(gzip.open(sys.argv[1]).read(), np.uint8).reshape(-1, 3073)[: int(sys.argv[3])]
np.savez_compressed(sys.argv[2], x=raw[:, 1:].reshape(-1, 3, 32, 32), y=raw[:, 0])
EOF
du -sh "$DST"
