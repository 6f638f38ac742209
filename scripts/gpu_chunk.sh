#!/usr/bin/env bash
# One chunk (under 10 minutes) of config/ema_cpu_v2_gpu.yaml on a GPU machine with PyTorch, no
# install needed (PYTHONPATH=src; PyAV and PySceneDetect are not used by training), then the GPU
# speed figures of the README. Results in $OUT (default runs/gpu_out):
#   chunk.safetensors  the EMA weights at the end (float16): the next chunk's init_weights
#   best.safetensors   the best by validation PSNR (float16)
#   train.log, speed.log
# Needs devdata/gpu (scripts/prepare_training_data.py) and runs/gpu (scripts/prepare_gpu_run.py).
#   MINUTES=6.5 INIT=runs/gpu/init.safetensors bash scripts/gpu_chunk.sh
# (EXTRA="--set key=value ..." adds config overrides; DEVICE=cpu REPEATS=1 for a dry run here.)
set -u
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1
OUT=${OUT:-runs/gpu_out}
MINUTES=${MINUTES:-6.5}
INIT=${INIT:-runs/gpu/init.safetensors}
mkdir -p "$OUT"
nvidia-smi -L; python3 -c "import torch; print('torch', torch.__version__)"
python3 -m emavfi.cli.main train --config config/ema_cpu_v2_gpu.yaml --set "init_weights=$INIT" \
  --set "max_minutes=$MINUTES" --set "schedule_minutes=$MINUTES" ${EXTRA:-} 2>&1 | tr '\r' '\n' \
  | awk '!/it\/s/ || /00:00\]/ || NR % 200 == 0' > "$OUT/train.log"
tail -n 5 "$OUT/train.log"
python3 - "$OUT" <<'PY'
import sys, torch
from emavfi.models.checkpoints import load_model, save_checkpoint
from emavfi.models.registry import create_model
from emavfi.train.state import load_resume_checkpoint
out = sys.argv[1]
from pathlib import Path
state = load_resume_checkpoint(Path("runs/ema_cpu_v2/last.pt"))
model = create_model("ema-cpu", flow_init="none")
model.load_state_dict(state["model"])
ema = state.get("ema")
if ema:
    shadow = ema.get("shadow", ema)
    model.load_state_dict({k: v for k, v in shadow.items() if k in model.state_dict()}, strict=False)
info = {"step": state["step"], "train_seconds": state.get("train_seconds"), "best_psnr": state["best_psnr"]}
save_checkpoint(model, f"{out}/chunk.safetensors", half=True, training=info)
save_checkpoint(load_model("runs/ema_cpu_v2/best.safetensors"), f"{out}/best.safetensors", half=True, training=info)
print("saved", info)
PY
[ -n "${SKIP_BENCH:-}" ] && { ls -la "$OUT"; exit 0; }
DEVICE=${DEVICE:-cuda}
S="timeout 20 python3 benchmarks/model_speed.py --device $DEVICE --flow-scale 1.0 --repeats ${REPEATS:-20}"
{
  $S --weights "$OUT/best.safetensors" --size 1920x1080
  $S --weights "$OUT/best.safetensors" --size 1920x1080 --precision bf16
  $S --weights "$OUT/best.safetensors" --size 3840x2160 --precision bf16
  $S --model rife-4.25 --size 1920x1080
  $S --model rife-4.25 --size 1920x1080 --precision fp16
  $S --model rife-4.25 --size 3840x2160 --precision fp16
  $S --model ema-cpu --size 1920x1080 --repeats 5
  timeout 25 python3 benchmarks/model_speed.py --device $DEVICE --weights "$OUT/best.safetensors" --train --batch 64 --size 256x256 --repeats 10
} 2>&1 | grep -v Warning | tee "$OUT/speed.log"
ls -la "$OUT"
