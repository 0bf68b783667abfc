#!/usr/bin/env bash
# Shell pipelines with segtool's box commands. Data goes to stdout, notices to stderr, so commands
# compose with each other and with jq / awk. Run: bash examples/pipelines.sh
set -euo pipefail

# segtool from PATH, else this checkout's .venv (after `make demo` the venv is not on PATH), else
# `python -m segtool`; --quiet keeps the demo output to data only.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if command -v segtool >/dev/null 2>&1; then SEGTOOL=(segtool)
elif [ -x "$here/.venv/bin/segtool" ]; then SEGTOOL=("$here/.venv/bin/segtool")
else SEGTOOL=("${PYTHON:-python3}" -m segtool)
fi
segtool() { "${SEGTOOL[@]}" "$@" --quiet; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Ground truth in xywh (COCO style, with a label column) and detections in centre form.
cat > "$work/truth.csv" <<'EOF'
x,y,w,h,label
10,20,100,80,cat
150,40,60,120,dog
EOF
cat > "$work/detections.jsonl" <<'EOF'
{"cx": 62, "cy": 58, "w": 96, "h": 84, "score": 0.92, "label": "cat"}
{"cx": 70, "cy": 64, "w": 110, "h": 90, "score": 0.61, "label": "cat"}
{"cx": 178, "cy": 104, "w": 58, "h": 116, "score": 0.88, "label": "dog"}
EOF

echo "== 1. convert the ground truth to corners, then IoU of every detection with it (best match)"
segtool box-convert --to xyxy "$work/truth.csv" \
  | segtool iou "$work/detections.jsonl" - --best --csv

echo "== 2. non-maximum suppression per class, kept rows as CSV"
segtool nms "$work/detections.jsonl" --scores score --classes label --iou 0.5 --rows --csv

echo "== 3. pixels -> normalised centre boxes for a 240x320 image, clipped"
segtool box-convert --to cxcywh --size 240x320 --normalize --clip "$work/truth.csv"

echo "== 4. anchors: how many for a 561x728 image, and the ones centred on pixel (250, 250)"
segtool anchors --size 561x728 --sizes 0.75,0.5,0.25 --ratios 1,2,0.5
segtool anchors --size 561x728 --at 250,250 --pixels --csv

echo "== 5. every anchor of a small map, streamed, then the best anchor for each ground-truth box"
segtool box-convert --to xyxy --size 240x320 --normalize "$work/truth.csv" > "$work/truth_norm.csv"
segtool anchors --size 24x32 --all --csv \
  | segtool iou "$work/truth_norm.csv" - --best --csv

if command -v jq >/dev/null 2>&1; then
  echo "== 6. jq over --json: detection pairs overlapping by more than 0.5"
  segtool iou "$work/detections.jsonl" --min-iou 0.5 --json | jq -c 'select(.a < .b)'
  echo "== 7. jq: the anchor layout as size x ratio -> pixel width"
  segtool anchors --size 561x728 --json | jq -r '.layout[] | "\(.size) x \(.ratio): \(.width_px) px wide"'
else
  echo "(jq not installed: skipping the jq examples)"
fi
