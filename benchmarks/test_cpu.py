"""The CPU comparisons of benchmarks/cpu.py under pytest-benchmark: each reports its ratio in extra_info.

    python -m pytest benchmarks -q --benchmark-json=cpu-bench.json
"""

from cpu import bench_generation, bench_loader, bench_lora_step, bench_text


def run_once(benchmark, fn, *args):
    # One round: each comparison already alternates its two sides in rounds of its own.
    result = benchmark.pedantic(fn, args=args, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    return result


def test_engine_vs_reference_loop(benchmark, tiny_sd_folder, sizes, tmp_path):
    result = run_once(benchmark, bench_generation, tiny_sd_folder, tmp_path, sizes)
    print(f"\nengine vs reference-style loop: {result['speedup']:.2f}x (target 2.5x); adapter switch "
          f"{100 * result['switch_share_of_class']:.1f}% of a class's generation (target < 2%)")
    assert result["max_pixel_diff"] <= 1


def test_merged_vs_unmerged_lora_step(benchmark, tiny_sd_folder, sizes):
    result = run_once(benchmark, bench_lora_step, tiny_sd_folder, sizes)
    print(f"\nUNet step, merged vs unmerged LoRA: {result['speedup']:.2f}x")
    assert result["max_abs_diff"] < 1e-4


def test_classifier_loader_vs_png_decode(benchmark, sizes, tmp_path):
    result = run_once(benchmark, bench_loader, tmp_path, sizes)
    print(f"\nclassifier loader vs PIL PNG decode per step: {result['speedup']:.1f}x (target 4x)")
    assert result["identical_batches"]


def test_truncated_vs_full_text_tower(benchmark, sizes):
    result = run_once(benchmark, bench_text, sizes)
    print(f"\ntext step, longest prompt vs 77 tokens: {result['speedup']:.2f}x (target 3x)")
    assert result["max_abs_diff"] < 1e-5
