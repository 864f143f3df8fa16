"""Tests of fcn8s/bench.py: the benchmark runs on a tiny configuration and reports every figure."""
import json
import os

import numpy as np
import pytest

import main
from fcn8s import bench
from fcn8s.bench import bench_command
from fcn8s.precision import available_precisions
from fcn8s.tests.fixtures import TINY_WIDTH
from fcn8s.vgg import vgg16_layer_shapes


def forward_gflop_by_hand(vgg_width, height, width):
    """GFLOP (2 x multiply-adds) of FCN-8s's convolutions for one height x width image, from the layer shapes."""
    multiply_adds = 0
    for name, kernel_shape in vgg16_layer_shapes(vgg_width):
        stride = 32 if name.startswith('fc') else 2 ** (int(name[len('conv')]) - 1)  # conv3_1: block 3, stride 4
        multiply_adds += (height // stride) * (width // stride) * np.prod(kernel_shape)
    channels = {name: kernel_shape[3] for name, kernel_shape in vgg16_layer_shapes(vgg_width)}
    for stride, in_channels in ((32, channels['fc7']), (16, channels['conv4_3']), (8, channels['conv3_3'])):
        multiply_adds += (height // stride) * (width // stride) * in_channels * 2          # score_fr, _pool4, _pool3
    for stride, kernel_size in ((32, 4), (16, 4), (8, 16)):
        multiply_adds += (height // stride) * (width // stride) * kernel_size ** 2 * 2 * 2  # upscore2, _pool4, 8
    return 2 * multiply_adds / 1e9


@pytest.mark.slow
def test_bench_runs_on_a_tiny_configuration_and_writes_its_json(tmp_path):
    # A benchmark, not a test of speed: only that it runs and reports every figure, with no timing assertion.
    out_path = tmp_path / 'out' / 'bench.json'
    returned = bench_command(['--image-height', '64', '--image-width', '192', '--width', str(TINY_WIDTH),
                              '--warmup-steps', '1', '--steps', '2', '--pipeline-batches', '3',
                              '--cache-dir', str(tmp_path / 'cache'), '--out', str(out_path)], main.build_graph)
    result = json.loads(out_path.read_text())
    assert result == json.loads(json.dumps(returned))
    for key in ('train_speedup', 'infer_speedup_b8', 'peak_gflops'):
        assert result[key] > 0, key
    best = available_precisions()[0]
    assert set(result['modes']) == {'classic_fp32', *(f'project_{precision}' for precision in available_precisions())}
    for name, speed in result['modes'].items():
        for figure in ('train_images_per_s', 'train_ms_per_step', 'train_input_wait_ms_per_step', 'train_share_of_peak',
                       'infer_b1_images_per_s', 'infer_b8_images_per_s', 'infer_b8_share_of_peak'):
            assert speed[figure] >= 0, (name, figure)
    assert result['modes'][f'project_{best}']['train_files_over_memory'] > 0
    assert set(result['speedups'][f'project_{best}']) == {'train', 'infer_b1', 'infer_b8'}
    assert result['gflop_per_image']['inference'] == pytest.approx(forward_gflop_by_hand(TINY_WIDTH, 64, 192))
    assert result['gflop_per_image']['training'] == pytest.approx(3 * result['gflop_per_image']['inference'])
    assert os.listdir(tmp_path / 'cache') == [f'vgg_width_{TINY_WIDTH:g}']
    # The input pipeline alone hands the graph uint8 images and uint8 class ids: 4 bytes a pixel.
    pipeline = result['pipeline']
    assert set(pipeline) == {'kitti_road', 'cityscapes'}
    assert pipeline['kitti_road']['mb_per_image'] == pytest.approx(160 * 576 * 4 / 1e6)
    assert pipeline['cityscapes']['mb_per_image'] == pytest.approx(512 * 1024 * 4 / 1e6)
    for speed in pipeline.values():
        assert speed['images_per_s'] > 0 and speed['decode_ms_per_image'] > 0
        assert speed['decoded_mb_per_image'] == pytest.approx(speed['mb_per_image'])
    litert = result['litert']
    assert litert['savedmodel'] in {f'project_{precision}' for precision in available_precisions()}
    assert set(litert['modes']) == {litert['savedmodel'], 'litert_int8', 'litert_fp32'}
    int8, fp32, savedmodel = (litert['modes'][name] for name in ('litert_int8', 'litert_fp32', litert['savedmodel']))
    assert result['litert_int8_speedup_b1'] == int8['speedup_b1'] == pytest.approx(
        int8['infer_b1_images_per_s'] / savedmodel['infer_b1_images_per_s'])
    assert int8['file_mb'] < 0.4 * fp32['file_mb'] and fp32['file_mb'] < savedmodel['file_mb']


def test_bench_refuses_a_size_that_is_not_a_multiple_of_32(capsys):
    with pytest.raises(SystemExit):
        bench_command(['--image-height', '100'], main.build_graph)
    assert 'not a multiple of 32' in capsys.readouterr().err


def test_bench_refuses_an_out_it_cannot_write_before_measuring(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, 'bench', lambda *args: pytest.fail('the bench ran'))
    (tmp_path / 'a file').write_text('')
    with pytest.raises(SystemExit) as exited:
        bench.bench_command(['--out', str(tmp_path / 'a file' / 'bench.json'), '--precision', 'fp32'], None)
    assert str(exited.value.code) == (f"error: {tmp_path / 'a file'} (--out) is a file, not a folder: give another "
                                      '--out.')
    with pytest.raises(SystemExit):
        bench.bench_command(['--out', str(tmp_path), '--precision', 'fp32'], None)
    assert f'--out {tmp_path} is a folder: give the path of a JSON file to write' in capsys.readouterr().err
