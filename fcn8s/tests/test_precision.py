"""Tests of fcn8s/precision.py: which precision this machine runs, and each session's rewrite."""
import pytest
from tensorflow.core.protobuf import rewriter_config_pb2

from fcn8s import precision
from fcn8s.options import parse_config
from fcn8s.precision import PRECISIONS, available_precisions, resolve_precision, session_config


def test_session_config_turns_on_its_precisions_rewrite_only():
    on = rewriter_config_pb2.RewriterConfig.ON
    rewrites = {precision: session_config(precision).graph_options.rewrite_options for precision in PRECISIONS}
    assert rewrites['bf16'].auto_mixed_precision_onednn_bfloat16 == on and rewrites['bf16'].auto_mixed_precision != on
    assert rewrites['fp16'].auto_mixed_precision == on and rewrites['fp16'].auto_mixed_precision_onednn_bfloat16 != on
    assert rewrites['fp32'].auto_mixed_precision_onednn_bfloat16 != on and rewrites['fp32'].auto_mixed_precision != on
    with pytest.raises(ValueError, match='auto'):
        session_config('auto')


@pytest.mark.parametrize('cpu_flags, gpu_capabilities, expected', [
    ('avx2 avx512f avx512_bf16', [], ('bf16', 'fp32')),
    ('avx2 fma', [], ('fp32',)),
    ('avx2 avx512_bf16', [(7, 0)], ('fp16', 'fp32')),  # a GPU runs the ops: no bfloat16 rewrite for them
    ('avx2', [(6, 1)], ('fp32',)),                      # Pascal: the float16 rewrite leaves it alone
])
def test_auto_precision_is_the_fastest_this_machine_has(monkeypatch, cpu_flags, gpu_capabilities, expected):
    monkeypatch.setattr(precision, 'cpu_info', lambda: {'flags': cpu_flags})
    monkeypatch.setattr(precision, 'gpu_compute_capabilities', lambda: gpu_capabilities)
    monkeypatch.delenv('TF_ENABLE_ONEDNN_OPTS', raising=False)
    assert available_precisions() == expected
    assert resolve_precision('auto') == expected[0]


def test_an_unavailable_precision_is_refused_saying_what_the_machine_offers(monkeypatch):
    monkeypatch.setattr(precision, 'cpu_info', lambda: {'flags': 'avx2 fma'})
    monkeypatch.setattr(precision, 'gpu_compute_capabilities', lambda: [])
    with pytest.raises(ValueError, match=r'--precision bf16 .*AVX-512 BF16.*offers fp32'):
        resolve_precision('bf16')
    assert parse_config(['--precision', 'fp32'])[0].precision == 'fp32'
    assert parse_config([])[0].precision == 'auto'


@pytest.mark.parametrize('cpu_flags, onednn_opts, gpu_capabilities, reason', [
    ('avx2 avx512_bf16', '0', [], 'TF_ENABLE_ONEDNN_OPTS=0 turns oneDNN off; unset it'),
    ('avx2 fma', None, [], 'this CPU lacks AVX-512 BF16'),
    ('avx2 avx512_bf16', None, [(8, 0)], 'places the ops on the GPU'),
])
def test_a_refused_bf16_names_its_cause(monkeypatch, cpu_flags, onednn_opts, gpu_capabilities, reason):
    monkeypatch.setattr(precision, 'cpu_info', lambda: {'flags': cpu_flags})
    monkeypatch.setattr(precision, 'gpu_compute_capabilities', lambda: gpu_capabilities)
    if onednn_opts is None:
        monkeypatch.delenv('TF_ENABLE_ONEDNN_OPTS', raising=False)
    else:
        monkeypatch.setenv('TF_ENABLE_ONEDNN_OPTS', onednn_opts)
    with pytest.raises(ValueError) as refused:
        resolve_precision('bf16')
    assert reason in str(refused.value)
    assert 'bf16' not in available_precisions()


def test_a_refused_fp16_says_which_gpu_is_too_old(monkeypatch):
    monkeypatch.setattr(precision, 'gpu_compute_capabilities', lambda: [(6, 1)])
    with pytest.raises(ValueError, match=r'compute capability 6\.1, below 7\.0\. It offers fp32'):
        resolve_precision('fp16')
