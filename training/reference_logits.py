#!/usr/bin/env python3
"""The training module's own forward pass over a saved model directory, as JSON: the check that training and
inference agree (test/training/houseTraining.test.ts compares the runtime against it).

    /usr/bin/python3 training/reference_logits.py --model DIR --ids 1,2,3 [--last 4] [--greedy 8]
prints {"logits": [[...] per last position], "greedy": [ids]} computed in float32."""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "test", "tools"))

import house_model_shape  # noqa: E402
import safetensors_io  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--last", type=int, default=1)
    ap.add_argument("--greedy", type=int, default=0)
    args = ap.parse_args()
    import numpy as np
    import torch
    import qwen2_torch
    with open(os.path.join(args.model, "config.json")) as f:
        config = json.load(f)
    tensors, _, _ = safetensors_io.read_file(os.path.join(args.model, "model.safetensors"))
    shape = {k: config[k] for k in house_model_shape.SHAPE}
    model = qwen2_torch.load({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in tensors.items()}, shape).eval()
    ids = [int(x) for x in args.ids.split(",")]
    with torch.no_grad():
        logits = model(torch.tensor([ids]))[0, -args.last:]
    eos = config.get("eos_token_id")
    out = {"logits": logits.tolist(), "greedy": qwen2_torch.greedy(model, ids, args.greedy, eos) if args.greedy else []}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
