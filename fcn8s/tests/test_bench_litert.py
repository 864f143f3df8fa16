"""Tests of fcn8s/bench_litert.py: the LiteRT figures of bench from known timings."""
import pytest

from fcn8s.bench_litert import LiteRTSubject, format_litert, litert_figures


def test_litert_figures_turn_median_seconds_into_images_per_second_speedups_and_megabytes():
    subjects = [LiteRTSubject('litert_int8', None, 135_000_000), LiteRTSubject('litert_fp32', None, 537_000_000)]
    inference_times = {1: {'project_bf16': [0.5, 0.25, 1 / 3], 'litert_int8': [0.1, 0.125, 0.1], 'litert_fp32': [0.5]},
                       8: {'project_bf16': [2.0], 'litert_int8': [1.0, 0.5, 0.8], 'litert_fp32': [4.0]}}
    litert = litert_figures(inference_times, 'project_bf16', subjects, 540_000_000)
    assert litert['savedmodel'] == 'project_bf16'
    assert litert['modes']['project_bf16'] == {'file_mb': 540.0, 'infer_b1_images_per_s': 3.0,
                                               'infer_b8_images_per_s': 4.0}
    assert litert['modes']['litert_int8'] == pytest.approx({'file_mb': 135.0, 'infer_b1_images_per_s': 10.0,
                                                            'infer_b8_images_per_s': 10.0, 'speedup_b1': 10 / 3,
                                                            'speedup_b8': 2.5})
    assert litert['modes']['litert_fp32']['speedup_b1'] == pytest.approx(2 / 3)
    rows = format_litert(litert).split('\n')
    assert rows[1].split() == ['mode', 'b1', 'img/s', 'b8', 'img/s', 'file', 'MB', 'speedup', 'b1', 'speedup', 'b8']
    assert rows[3].split() == ['litert_int8', '10.000', '10.000', '135.0', '3.33x', '2.50x']
