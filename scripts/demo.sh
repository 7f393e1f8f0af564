#!/usr/bin/env bash
# The main job, on data shipped in the repository: set up and build, train EMBSR on the JD
# Appliances sample with the paper's protocol (next operation given), print the test metrics next
# to the POP and S-POP baselines, then ask the saved model for recommendations.
# Extra arguments go to embsr-train (e.g. --epochs 10, --next-op learned, --no-attention).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" --build-dir "$root/build" --target embsr-train --target embsr-recommend --target embsr-data
data="$root/data/jd_appliances"
out="$root/out/jd_appliances"
export OMP_PROC_BIND="${OMP_PROC_BIND:-false}"

"$root/build/examples/embsr-train" --format jd \
  "$data/HUP_Data/JD_Applicances_sample" "$data/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample" \
  --baselines --output "$out" "$@"
# (embsr-train's defaults are the paper's JD-Appliances settings: support 5, L 40, d 100, lr 0.001,
#  dropout 0.2, batch 512, up to 50 epochs, patience 10; any of them can be given as an argument.)

echo
echo "== embsr-recommend: top 5 for a session given as JSON lines (items and operations as in the log) =="
cmd=("$root/build/examples/embsr-recommend" --model "$out/best.ckpt" --k 5)
echo "\$ echo '{\"session\": [{\"item\": \"1169504\", \"operation\": \"SearchList2Product\"}, ...]}' | ${cmd[*]}"
printf '%s\n' \
  '{"session": [{"item": "1169504", "operation": "SearchList2Product"}, {"item": "1169504", "operation": "Detail_specification"}, {"item": "3170510", "operation": "SearchList2Product"}]}' \
  '{"items": ["435168", "2771999", "435168"], "operations": ["SearchList2Product", "SearchList2Product", "Detail_comments"]}' |
  "${cmd[@]}"
