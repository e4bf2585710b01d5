"""The peer and the ceilings for bench/cuda.ts, on the GPU machine (torch + transformers there).

Measures, in the same run as the CUDA engine's benchmark:
  - device-to-device copy bandwidth (bytes read + written per second) and the bf16 GEMM rate (8192^3), the
    denominators of the decode and prefill floors;
  - Hugging Face transformers (SDPA, bf16) on a Qwen2.5-7B-shaped model with random weights: prefill tokens/s
    and decode ms/token at each context, KV bytes per token, peak GPU memory.
Exits 3 where torch sees no CUDA device. Writes JSON to the path given as the first argument after each measurement, so a timeout keeps what was done.
  python3 test/gpu/transformers_peer.py OUT.json --contexts 4096,32768 --decode 16
"""
import argparse
import json
import statistics
import sys
import time

import torch


def timed(fn, repeat):
    """Median seconds of `repeat` runs of fn after one warm-up, timed with CUDA events."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    return statistics.median(times)


def ceilings():
    n = 1 << 30  # 2 GiB of bf16, several times the L2
    a = torch.randn(n, dtype=torch.bfloat16, device="cuda")
    b = torch.empty_like(a)
    copy_s = timed(lambda: b.copy_(a), 10)
    del a, b
    m = 8192
    x = torch.randn(m, m, dtype=torch.bfloat16, device="cuda")
    y = torch.randn(m, m, dtype=torch.bfloat16, device="cuda")
    gemm_s = timed(lambda: x @ y, 10)
    del x, y
    torch.cuda.empty_cache()
    return {"copy_bytes_per_s": 2 * 2 * n / copy_s, "bf16_gemm_flop_per_s": 2 * m**3 / gemm_s}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--contexts", default="4096,32768")
    parser.add_argument("--decode", type=int, default=16)
    args = parser.parse_args()
    if not torch.cuda.is_available():  # test/gpu/stage.sh: exit 3 = the GPU this needs is not on this machine
        print("no GPU: torch sees no CUDA device here")
        return 3
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "runs": []}

    def save():
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)

    result["ceilings"] = ceilings()
    save()
    print("ceilings", result["ceilings"], flush=True)

    import transformers
    from transformers import Qwen2Config, Qwen2ForCausalLM

    result["transformers"] = transformers.__version__
    config = Qwen2Config(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                         num_key_value_heads=4, vocab_size=152064, max_position_embeddings=131072, rope_theta=1e6,
                         tie_word_embeddings=False)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16).eval()
    with torch.no_grad():  # warm-up: kernels, cuBLAS handles, allocator
        model(input_ids=torch.randint(0, config.vocab_size, (1, 256), device="cuda"), use_cache=True, logits_to_keep=1)
    kv_per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * (config.hidden_size // config.num_attention_heads) * 2
    for context in [int(c) for c in args.contexts.split(",")]:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        ids = torch.randint(0, config.vocab_size, (1, context), device="cuda")
        with torch.no_grad():
            torch.cuda.synchronize()
            started = time.perf_counter()
            out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
            torch.cuda.synchronize()
            prefill_s = time.perf_counter() - started
            cache = out.past_key_values
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            steps = []
            for _ in range(args.decode):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                out = model(input_ids=token, past_key_values=cache, use_cache=True, logits_to_keep=1)
                token = out.logits[:, -1].argmax(-1, keepdim=True)
                end.record()
                end.synchronize()
                steps.append(start.elapsed_time(end))
        run = {"engine": "transformers", "cache": "full", "context": context, "prefill_tok_s": context / prefill_s,
               "decode_ms": statistics.median(steps[1:] or steps), "kv_bytes_per_token": kv_per_token,
               "peak_gpu_bytes": torch.cuda.max_memory_allocated()}
        result["runs"].append(run)
        save()
        print(json.dumps(run), flush=True)
        del out, cache
    return 0


if __name__ == "__main__":
    sys.exit(main())
