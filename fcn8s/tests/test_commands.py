"""Tests of fcn8s/commands.py: build-vgg, infer, video and check-data as a user runs them."""
import os

import imageio_ffmpeg
import moviepy
import numpy as np
import pytest
from PIL import Image

import main
from fcn8s import commands
from fcn8s.commands import build_vgg_command, check_data_command, infer_command, video_command
from fcn8s.images import load_image
from fcn8s.predict import saved_model_road_predictor
from fcn8s.tests.fixtures import SHARED_SAMPLES, TINY_WIDTH
from fcn8s.tf1 import tf


def test_build_vgg_command_writes_random_weights_and_refuses_imagenet_at_another_width(tmp_path, capsys):
    vgg_path = build_vgg_command(['--weights', 'random', '--width', str(TINY_WIDTH),
                         '--out', str(tmp_path / 'vgg')])
    with tf.Session() as sess:
        layer7_out = main.load_vgg(sess, vgg_path)[4]
    assert layer7_out.shape[-1] == 256
    with pytest.raises(SystemExit):
        build_vgg_command(['--width', '0.5', '--out', str(tmp_path / 'other')])
    assert '--width 0.5 needs --weights random' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'other')


def test_infer_writes_overlays_and_masks_at_each_images_own_size(exported_run, tmp_path):
    run_dir = exported_run[0]
    rng = np.random.default_rng(8)
    Image.fromarray(rng.integers(0, 256, (37, 61), dtype=np.uint8)).save(tmp_path / 'gray.png')
    folder = tmp_path / 'folder'
    folder.mkdir()
    Image.fromarray(rng.integers(0, 256, (375, 1242, 4), dtype=np.uint8)).save(folder / 'rgba.png')
    Image.fromarray(rng.integers(0, 256, (50, 80, 3), dtype=np.uint8)).save(folder / 'photo.jpg')
    out_dir = tmp_path / 'out'
    infer_command([str(tmp_path / 'gray.png'), str(folder), '--run', run_dir, '--out', str(out_dir), '--masks'])
    predict = saved_model_road_predictor(os.path.join(run_dir, 'model'))
    for input_path, name in ((tmp_path / 'gray.png', 'gray.png'), (folder / 'rgba.png', 'rgba.png'),
                             (folder / 'photo.jpg', 'photo.png')):
        overlay, mask = Image.open(out_dir / 'overlays' / name), Image.open(out_dir / 'masks' / name)
        assert overlay.mode == 'RGB' and mask.mode == 'L'
        assert overlay.size == mask.size == Image.open(input_path).size, name
        road_prob, = predict([load_image(str(input_path))])
        np.testing.assert_array_equal(np.asarray(mask), np.where(road_prob > 0.5, 255, 0), err_msg=name)


def test_kitti_submission_writes_probability_maps_named_for_the_benchmark(exported_run, tmp_path):
    run_dir = exported_run[0]
    image = np.random.default_rng(9).integers(0, 256, (41, 150, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / 'um_000000.png')
    infer_command([str(tmp_path / 'um_000000.png'), '--model', os.path.join(run_dir, 'model'),
              '--out', str(tmp_path / 'given'), '--kitti-submission'])
    assert os.listdir(tmp_path / 'given') == ['um_road_000000.png']
    result = Image.open(tmp_path / 'given' / 'um_road_000000.png')
    assert result.mode == 'L' and result.size == (150, 41)
    road_prob, = saved_model_road_predictor(os.path.join(run_dir, 'model'))([image])
    np.testing.assert_array_equal(np.asarray(result), np.round(road_prob * 255))
    infer_command(['--run', run_dir, '--out', str(tmp_path / 'testing'), '--kitti-submission'])
    assert os.listdir(tmp_path / 'testing') == ['uu_road_000007.png']  # the run's data_road/testing/image_2
    assert Image.open(tmp_path / 'testing' / 'uu_road_000007.png').size == (130, 50)


def test_video_paints_every_frame_in_batches_and_keeps_fps_size_and_audio(exported_run, tmp_path, monkeypatch):
    run_dir = exported_run[0]
    rng = np.random.default_rng(10)
    frames = [rng.integers(0, 256, (60, 90, 3), dtype=np.uint8) for _ in range(20)]  # 90x60: not a multiple of 32
    tone = moviepy.AudioClip(lambda time_s: np.sin(2 * np.pi * 440 * time_s), duration=2, fps=22050)
    input_path, output_path = str(tmp_path / 'in.mp4'), str(tmp_path / 'new folder' / 'out.mp4')  # made by video
    moviepy.ImageSequenceClip(frames, fps=10).with_audio(tone).write_videofile(input_path, logger=None)
    batch_sizes = []
    load_predictor = saved_model_road_predictor

    def recording_predictor(model_dir, session_config=None):
        predict = load_predictor(model_dir, session_config)
        return lambda images: batch_sizes.append(len(images)) or predict(images)

    monkeypatch.setattr(commands, 'saved_model_road_predictor', recording_predictor)
    video_command([input_path, output_path, '--run', run_dir, '--batch-size', '8'])
    assert batch_sizes == [8, 8, 4]
    assert imageio_ffmpeg.count_frames_and_secs(output_path) == imageio_ffmpeg.count_frames_and_secs(input_path) == (20, 2.0)
    with moviepy.VideoFileClip(output_path) as painted:
        assert painted.size == [90, 60] and painted.fps == 10 and painted.audio is not None


def test_missing_model_unreadable_image_or_video_exit_naming_the_path(exported_run, tmp_path, capsys):
    image_path = tmp_path / 'um_000000.png'
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(image_path)
    (tmp_path / 'old_run').mkdir()
    broken_image, broken_video = tmp_path / 'broken.png', tmp_path / 'broken.mp4'
    broken_image.write_bytes(b'\x89PNG\r\n\x1a\n not really a png')
    broken_video.write_bytes(b'not really a video')
    model_dir = os.path.join(exported_run[0], 'model')
    for command, argv, named_path in (
            (infer_command, [str(image_path), '--run', str(tmp_path / 'old_run'), '--out', str(tmp_path / 'out')],
             os.path.join(str(tmp_path / 'old_run'), 'model')),
            (infer_command, [str(image_path), '--model', str(tmp_path / 'no_model'), '--out',
                                      str(tmp_path / 'out')], str(tmp_path / 'no_model')),
            (infer_command, [str(broken_image), '--model', model_dir, '--out', str(tmp_path / 'out')],
             str(broken_image)),
            (video_command, [str(broken_video), str(tmp_path / 'out.mp4'), '--model', model_dir],
             str(broken_video))):
        with pytest.raises(SystemExit) as exited:
            command(argv)
        assert str(exited.value.code).startswith('error: ') and named_path in str(exited.value.code), argv
    assert not os.path.exists(tmp_path / 'out.mp4')


def test_a_run_without_model_says_resume_exports_it(tmp_path):
    image_path = tmp_path / 'um_000000.png'
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(image_path)
    (tmp_path / 'killed_run').mkdir()
    with pytest.raises(SystemExit) as exited:
        infer_command([str(image_path), '--run', str(tmp_path / 'killed_run'), '--out', str(tmp_path / 'out')])
    assert f"`python main.py --resume {tmp_path / 'killed_run'}`, which trains any epochs left and exports it" in str(
        exited.value.code)


def test_video_into_a_folder_that_cannot_be_made_stops_before_reading_frames(tmp_path, monkeypatch):
    (tmp_path / 'a file').write_text('')
    monkeypatch.setattr(commands, 'open_video', lambda path: pytest.fail('a frame was read'))
    output_path = tmp_path / 'a file' / 'out.mp4'
    with pytest.raises(SystemExit) as exited:
        video_command([str(tmp_path / 'in.mp4'), str(output_path), '--model', str(tmp_path / 'model')])
    assert str(exited.value.code).startswith(f"error: cannot make the folder {tmp_path / 'a file'} for {output_path}")


def test_check_data_command_prints_every_problem_and_fails(kitti_copy, capsys):
    os.remove(kitti_copy / 'training' / 'gt_image_2' / 'um_road_000001.png')
    truncated = kitti_copy / 'training' / 'image_2' / 'uu_000001.png'
    truncated.write_bytes(truncated.read_bytes()[:1000])
    with pytest.raises(SystemExit) as exited:
        check_data_command(['--data', str(kitti_copy), '--image-height', '64', '--image-width', '192'])
    assert str(exited.value.code) == f'error: errors in {kitti_copy}: 2, listed above; training would stop on them.'
    report = capsys.readouterr().out
    assert 'training images 6 (um 2, umm 2, uu 2)' in report and 'errors: 2, warnings: 0' in report
    assert f"error: {kitti_copy / 'training' / 'image_2' / 'um_000001.png'} has no label" in report
    assert f'error: {truncated} cannot be read' in report


@pytest.mark.skipif(not os.path.isdir(SHARED_SAMPLES), reason=f'{SHARED_SAMPLES} is absent (only in the dev workspace)')
def test_check_data_passes_the_six_real_kitti_pairs(capsys):
    samples = os.path.dirname(SHARED_SAMPLES)  # training/ only: the real pairs come without testing/
    data_check = check_data_command(['--data', samples])
    assert data_check.errors == []
    assert data_check.summary['training images'] == {'um': 2, 'umm': 2, 'uu': 2}
    assert data_check.summary['image sizes'] == {(1242, 375): 2, (1238, 374): 2, (1226, 370): 1, (1241, 376): 1}
    assert data_check.summary['label colours'][0, 0, 255] == 33
    missing_testing, blue_pixels = data_check.warnings
    assert 'testing/image_2 is missing' in missing_testing
    assert '1 of 6 labels' in blue_pixels and '(0, 0, 255) 33 pixels in umm_road_000009.png' in blue_pixels
    with pytest.raises(SystemExit):
        check_data_command(['--data', samples, '--require-testing'])
    assert f"error: {os.path.join(samples, 'testing', 'image_2')} is missing" in capsys.readouterr().out
