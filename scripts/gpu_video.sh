#!/usr/bin/env bash
# End-to-end video speed on a GPU machine (issue 12): `emavfi interpolate`'s pipeline at 1080p and
# 2160p through benchmarks/video_speed.py, with ema-cpu and Practical-RIFE 4.25, fp16 autocast by
# default on CUDA. The GPU image has PyTorch, OpenCV and NumPy but no PyAV or PySceneDetect: they
# travel as wheels in .whl/ (see below). Results in $OUT (default runs/gpu_video): video.log.
#
# Here, once (Python 3.12 wheels for the GPU image; .whl/ is ignored by git):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 -d .whl av==18.1.0 scenedetect==0.6.7.1 platformdirs
#   python scripts/prepare_gpu_run.py --rife ../shared/fixtures/rife_v425/flownet.pkl
# Then on the device, carrying [".whl", "runs/gpu"]:
#   bash scripts/gpu_video.sh
# (FRAMES=8 SIZES="1080p" for a shorter run; DEVICE=cpu FRAMES=2 SIZES=480p for a dry run here.)
set -u
OUT=${OUT:-runs/gpu_video}
mkdir -p "$OUT" /tmp/site
if ! python3 -c "import av, scenedetect" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null && nvidia-smi -L
python3 -c "import torch, av; print('torch', torch.__version__, 'av', av.__version__)"
python3 benchmarks/video_speed.py --device "${DEVICE:-cuda}" --frames "${FRAMES:-16}" \
  --sizes ${SIZES:-1080p 2160p} --models ema-cpu runs/gpu/rife425.safetensors --engines \
  2>&1 | grep -v Warning | tee "$OUT/video.log"
