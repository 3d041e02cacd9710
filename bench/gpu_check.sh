#!/usr/bin/env bash
# The CUDA path's check on a GPU machine (run there from the repository root; python3 must hold
# torch with CUDA, numpy, safetensors, pytest). Writes logs under ${OUT:-.}/.
# It runs the model tests (the gpu-marked CUDA-vs-CPU equality included) and the inference
# benchmark on cuda and cpu, same machine, same harness.
set -uo pipefail
out=${OUT:-.}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' | tee "$out/env.log"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$out/env.log"
# -c /dev/null: the project's pytest config names plugins (asyncio, dagster warnings) absent there.
python3 -m pytest -c /dev/null --rootdir=. -p no:cacheprovider --confcutdir=tests/live/models \
    -q -rA tests/live/models 2>&1 | tee "$out/pytest_models.log"
for dev in cuda cpu; do
    python3 bench/bench_inference.py --device "$dev" --threads 1 --calls 200 --repeats 3 \
        --sizes 1,100,1000 2>&1 | tee "$out/bench_inference_$dev.log"
done
