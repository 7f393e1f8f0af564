#!/usr/bin/env bash
# The main job, on data shipped in the repository: set up and build, train the library's best model
# of this sample, EMBSR-R (`embsr-r`: EMBSR with a repeat/explore mixture, docs/REPEAT.md), on the
# JD Appliances sample with the paper's protocol (next operation given), print the test metrics
# next to the POP and S-POP baselines and the comparison with S-POP, then ask the saved model for
# recommendations.
# Extra arguments go to embsr-train and replace the settings below (e.g. --model embsr for the
# paper's model with its own settings, --next-op learned, --epochs 10).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" --build-dir "$root/build" --target embsr-train --target embsr-recommend --target embsr-data
data="$root/data/jd_appliances"
out="$root/out/jd_appliances"
export OMP_PROC_BIND="${OMP_PROC_BIND:-false}"

# The settings that measured best for embsr-r on this sample's validation split (docs/RESULTS.md,
# "EMBSR-R"); any of them given as an argument wins, and another --model gets none of them.
settings=(--model embsr-r --batch 32 --lr 0.001 --dropout 0.5 --epochs 40 --patience 10)
for arg in "$@"; do [[ "$arg" == --model || "$arg" == --model=* ]] && settings=(); done
chosen=()
for ((i = 0; i < ${#settings[@]}; i += 2)); do
  given=false
  for arg in "$@"; do [[ "$arg" == "${settings[i]}" || "$arg" == "${settings[i]}="* ]] && given=true; done
  $given || chosen+=("${settings[i]}" "${settings[i + 1]}")
done
"$root/build/examples/embsr-train" --format jd \
  "$data/HUP_Data/JD_Applicances_sample" "$data/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample" \
  --baselines --output "$out" "${chosen[@]}" "$@"
# (embsr-train's own defaults are the paper's JD-Appliances settings for EMBSR: support 5, L 40,
#  d 100, lr 0.001, dropout 0.2, batch 512, up to 50 epochs, patience 10.)

echo
echo "== embsr-recommend: top 5 for a session given as JSON lines (items and operations as in the log) =="
cmd=("$root/build/examples/embsr-recommend" --model "$out/best.ckpt" --k 5)
echo "\$ echo '{\"session\": [{\"item\": \"1169504\", \"operation\": \"SearchList2Product\"}, ...]}' | ${cmd[*]}"
printf '%s\n' \
  '{"session": [{"item": "1169504", "operation": "SearchList2Product"}, {"item": "1169504", "operation": "Detail_specification"}, {"item": "3170510", "operation": "SearchList2Product"}]}' \
  '{"items": ["435168", "2771999", "435168"], "operations": ["SearchList2Product", "SearchList2Product", "Detail_comments"]}' |
  "${cmd[@]}"
