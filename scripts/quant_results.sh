#!/usr/bin/env bash
# Regenerates docs/results/quant/: the accuracy, size and per-layer error of every quantization
# setting of LeNet-300-100 and LeNet-5 on Fashion-MNIST, with PyTorch's own quantization beside.
#
#   scripts/quant_results.sh [BUILD_DIR]       # default build/release (Release, native)
#
# 1. trains the float networks once (examples/train, 10 epochs, seed 1) into $WORK/{mlp,lenet5};
# 2. runs examples/quantize for PTQ 8-bit (min-max, MSE, percentile), PTQ 4-bit (8-bit ends and
#    uniform), QAT 8-bit and 4-bit (8-bit ends and uniform), 3 QAT epochs;
# 3. runs scripts/quant_torch.py (PyTorch's PTQ int8 and QAT 4-bit, 1 thread) unless
#    EDGESCALE_SKIP_TORCH=1;
# 4. writes docs/results/quant/<net>_<mode>_<bits>_<observer>[_uniform].json, torch.json,
#    table.md and accuracy.png (scripts/quant_table.py).
# WORK (default /tmp/edgescale-quant) keeps the trained float networks between runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build/release}
work=${WORK:-/tmp/edgescale-quant}
out=docs/results/quant
python=/usr/bin/python3
mkdir -p "$work" "$out"

if [[ ! -x $build/examples/quantize ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDGESCALE_BUILD_TESTS=OFF
  cmake --build "$build" --target train quantize infer
fi

for net in mlp lenet5; do
  if [[ ! -f $work/$net/0.weight.npy && ! -f $work/$net/1.weight.npy ]]; then
    echo "== training the float $net (10 epochs, seed 1)"
    "$build/examples/train" --net "$net" --epochs 10 --seed 1 --out "$work/$net.json" --save "$work/$net"
  fi
done

settings=(
  "ptq 8 minmax" "ptq 8 mse" "ptq 8 percentile" "ptq 4 mse" "ptq 4 mse --uniform"
  "qat 8 minmax" "qat 4 minmax" "qat 4 minmax --uniform"
)
for net in mlp lenet5; do
  for s in "${settings[@]}"; do
    read -r mode bits observer uniform <<<"$s"
    name="${net}_${mode}_${bits}_${observer}${uniform:+_uniform}"
    echo "== $name"
    "$build/examples/quantize" --net "$net" --mode "$mode" --bits "$bits" --observer "$observer" \
      ${uniform:+--uniform} --load "$work/$net" --qat-epochs 3 --seed 1 --out "$out/$name.json"
  done
done

if [[ ${EDGESCALE_SKIP_TORCH:-0} != 1 ]]; then
  echo "== PyTorch (scripts/quant_torch.py, one thread)"
  torch_args=(--seed 1 --out "$out/torch.json")
  if [[ -f $work/torch_lenet5.pt ]]; then
    torch_args+=(--load-fp32 "$work/torch_lenet5.pt")
  else
    torch_args+=(--save-fp32 "$work/torch_lenet5.pt")
  fi
  "$python" scripts/quant_torch.py "${torch_args[@]}"
fi

"$python" scripts/quant_table.py "$out"
echo "wrote $out/table.md and $out/accuracy.png"
