"""Tests of fcn8s/commands.py: build-vgg, infer, video, evaluate and check-data as a user runs them."""
import errno
import json
import os
import shutil
import zipfile

import imageio_ffmpeg
import moviepy
import numpy as np
import pytest
from PIL import Image

import main
from fcn8s import cityscapes, commands, files, video
from fcn8s.commands import build_vgg_command, check_data_command, evaluate_command, infer_command, video_command
from fcn8s.errors import DataError, ModelError
from fcn8s.export import export_run
from fcn8s.images import load_image
from fcn8s.kitti.bev import image_to_bev, write_calibration
from fcn8s.kitti.synthetic import synthetic_calibration
from fcn8s.litert import tflite_predictor
from fcn8s.predict import saved_model_predictor, saved_model_road_predictor
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
    infer_command([str(tmp_path / 'gray.png'), str(folder), '--run', run_dir, '--out', str(out_dir), '--masks',
                   '--precision', 'fp32'])
    predict = saved_model_road_predictor(os.path.join(run_dir, 'model'))  # fp32, as the command ran
    for input_path, name in ((tmp_path / 'gray.png', 'gray.png'), (folder / 'rgba.png', 'rgba.png'),
                             (folder / 'photo.jpg', 'photo.png')):
        overlay, mask = Image.open(out_dir / 'overlays' / name), Image.open(out_dir / 'masks' / name)
        assert overlay.mode == 'RGB' and mask.mode == 'L'
        assert overlay.size == mask.size == Image.open(input_path).size, name
        road_prob, = predict([load_image(str(input_path))])
        np.testing.assert_array_equal(np.asarray(mask), np.where(road_prob > 0.5, 255, 0), err_msg=name)


def test_kitti_submission_writes_perspective_bev_and_the_zip_to_upload(exported_run, tmp_path, capsys, monkeypatch):
    run_dir = exported_run[0]
    image_dir, calib_dir, out_dir = tmp_path / 'testing' / 'image_2', tmp_path / 'testing' / 'calib', tmp_path / 'out'
    image_dir.mkdir(parents=True)
    calib_dir.mkdir()
    rng = np.random.default_rng(9)
    for name in ('um_000000', 'umm_000003'):
        Image.fromarray(rng.integers(0, 256, (41, 150, 3), dtype=np.uint8)).save(image_dir / f'{name}.png')
        write_calibration(str(calib_dir / f'{name}.txt'), synthetic_calibration(150, 12))
    zip_path = infer_command([str(image_dir), '--model', os.path.join(run_dir, 'model'), '--out', str(out_dir),
                              '--kitti-submission', '--precision', 'fp32'])  # as the reference below
    assert zip_path == str(out_dir / 'kitti_road_submission.zip')
    assert sorted(os.listdir(out_dir)) == ['bev', 'kitti_road_submission.zip', 'perspective']
    result = Image.open(out_dir / 'perspective' / 'um_road_000000.png')
    assert result.mode == 'L' and result.size == (150, 41)
    road_prob, = saved_model_road_predictor(os.path.join(run_dir, 'model'))([load_image(str(image_dir / 'um_000000.png'))])
    np.testing.assert_array_equal(np.asarray(result), np.round(road_prob * 255))
    bev_result = np.asarray(Image.open(out_dir / 'bev' / 'um_road_000000.png'))
    assert bev_result.shape == (800, 400) and bev_result.any()
    np.testing.assert_array_equal(bev_result, image_to_bev(np.asarray(result), str(image_dir / 'um_000000.png')))
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.namelist() == ['um_road_000000.png', 'umm_road_000003.png']
        assert archive.read('umm_road_000003.png') == (out_dir / 'bev' / 'umm_road_000003.png').read_bytes()
    printed = capsys.readouterr().out
    assert f'Upload {zip_path} (2 BEV results at its root)' in printed and 'expects all 290 images' in printed

    os.remove(calib_dir / 'umm_000003.txt')
    monkeypatch.setattr(commands, 'saved_model_predictor', lambda *args: pytest.fail('the model was loaded'))
    with pytest.raises(SystemExit) as exited:
        infer_command([str(image_dir), '--run', run_dir, '--out', str(tmp_path / 'other'), '--kitti-submission'])
    assert str(exited.value.code).startswith("error: 1 of 2 images have no usable calibration, which the bird's-eye "
                                             'view of the submission needs; nothing was predicted or written:\n'
                                             f"  - {calib_dir / 'umm_000003.txt'} does not exist")
    assert not os.path.exists(tmp_path / 'other')


def test_kitti_submission_defaults_to_the_runs_testing_images(exported_run, tmp_path):
    infer_command(['--run', exported_run[0], '--out', str(tmp_path / 'testing'), '--kitti-submission'])
    assert os.listdir(tmp_path / 'testing' / 'bev') == ['uu_road_000007.png']  # the run's data_road/testing/image_2
    assert Image.open(tmp_path / 'testing' / 'perspective' / 'uu_road_000007.png').size == (130, 50)



def write_kitti_testing_images(split_dir, names, width=150, height=41):
    """Random images split_dir/image_2/<name>.png with synthetic calibrations in split_dir/calib; returns image_2."""
    rng = np.random.default_rng(11)
    for folder in ('image_2', 'calib'):
        os.makedirs(split_dir / folder, exist_ok=True)
    for name in names:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(image).save(split_dir / 'image_2' / f'{name}.png')
        write_calibration(str(split_dir / 'calib' / f'{name}.txt'), synthetic_calibration(width, 12))
    return split_dir / 'image_2'


def test_kitti_submission_refuses_before_predicting_every_bad_calibration_twin_name_and_a_folder_at_the_zip(
        exported_run, tmp_path, monkeypatch):
    monkeypatch.setattr(commands, 'saved_model_predictor', lambda *args: pytest.fail('the model was loaded'))
    image_dir = write_kitti_testing_images(tmp_path / 'testing', ['um_000000', 'um_000001', 'uu_000002', 'uu_000003'])
    calib_dir, out_dir = tmp_path / 'testing' / 'calib', tmp_path / 'out'
    not_finite, singular, elsewhere = (calib_dir / f'{name}.txt' for name in ('um_000001', 'uu_000002', 'uu_000003'))
    write_calibration(str(elsewhere), synthetic_calibration(150, 500))  # a horizon 500 rows down: no cell sees 41 rows
    not_finite.write_text(not_finite.read_text().replace('P2: 7.215377000000e+02', 'P2: nan'))
    singular.write_text(singular.read_text().split('Tr_cam_to_road:')[0] + 'Tr_cam_to_road: ' + '0 ' * 12 + '\n')
    argv = [str(image_dir), '--run', exported_run[0], '--out', str(out_dir), '--kitti-submission']
    with pytest.raises(SystemExit) as exited:
        infer_command(argv)
    message = str(exited.value.code)
    assert message.startswith("error: 3 of 4 images have no usable calibration, which the bird's-eye view of the "
                              'submission needs; nothing was predicted or written:')
    assert f'  - {not_finite}: its P2 line holds nan' in message
    assert f'  - {singular}: its Tr_cam_to_road cannot' in message
    assert f"  - {elsewhere}: no cell of the bird's-eye-view grid sees an image of 150x41 pixels" in message
    assert not os.path.exists(out_dir)

    write_kitti_testing_images(tmp_path / 'testing', ['um_000001', 'uu_000002', 'uu_000003'])
    (out_dir / 'kitti_road_submission.zip').mkdir(parents=True)
    (out_dir / 'kitti_road_submission.zip' / 'notes.txt').write_text('mine')
    with pytest.raises(SystemExit) as exited:
        infer_command(argv)
    assert str(exited.value.code).startswith(f"error: {out_dir / 'kitti_road_submission.zip'} is a folder, where this "
                                             'command writes a file: it is left as it is.')
    assert os.listdir(out_dir) == ['kitti_road_submission.zip']
    assert (out_dir / 'kitti_road_submission.zip' / 'notes.txt').read_text() == 'mine'
    os.rename(out_dir / 'kitti_road_submission.zip', tmp_path / 'kept')
    (out_dir / 'bev').write_text('a file')
    with pytest.raises(SystemExit) as exited:
        infer_command(argv)
    assert str(exited.value.code).startswith(f"error: {out_dir / 'bev'} is a file, where this command writes a folder")
    assert os.listdir(out_dir) == ['bev'] and (out_dir / 'bev').read_text() == 'a file'

    twin_dir = write_kitti_testing_images(tmp_path / 'more', ['um_000001'])
    with pytest.raises(SystemExit) as exited:
        infer_command([str(image_dir), str(twin_dir), '--run', exported_run[0], '--out', str(tmp_path / 'twins'),
                       '--kitti-submission'])
    assert str(exited.value.code) == (
        'error: input images whose outputs would share a name, so that one would overwrite another: '
        f"{image_dir / 'um_000001.png'} and {twin_dir / 'um_000001.png'} would write the same um_road_000001.png. Give "
        'images with distinct file names, or infer each folder into its own --out.')
    assert not os.path.exists(tmp_path / 'twins')


def test_infer_takes_images_in_subfolders_once_each_refuses_twin_names_and_counts_the_files_written(
        exported_run, tmp_path, capsys):
    folder = tmp_path / 'photos'
    write_kitti_testing_images(folder / 'a', ['um_000000'])
    write_kitti_testing_images(folder / 'b' / 'c', ['uu_000004'])
    twin_dir = write_kitti_testing_images(folder / 'b', ['um_000000'])
    argv = ['--run', exported_run[0], '--out', str(tmp_path / 'out'), '--masks']
    with pytest.raises(SystemExit) as exited:
        infer_command([str(folder), *argv])
    assert (f"{folder / 'a' / 'image_2' / 'um_000000.png'} and {twin_dir / 'um_000000.png'} would write the same "
            'um_000000.png') in str(exited.value.code)
    assert not os.path.exists(tmp_path / 'out')
    os.remove(twin_dir / 'um_000000.png')
    for out_dir in (tmp_path / 'out', folder / 'out', folder / 'out'):  # the second time, folder/out holds results
        written = infer_command([str(folder), str(folder / 'a' / 'image_2' / 'um_000000.png'), '--run',
                                 exported_run[0], '--out', str(out_dir), '--masks'])
        assert sorted(os.path.relpath(path, out_dir) for path in written) == [
            'masks/um_000000.png', 'masks/uu_000004.png', 'overlays/um_000000.png', 'overlays/uu_000004.png']
        assert f'Wrote 4 files for 2 images to {out_dir}' in capsys.readouterr().out



def test_kitti_evaluate_leaves_bad_calibrations_out_of_the_bev_and_refuses_missing_images_and_bad_labels(
        exported_run, kitti_copy, tmp_path, capsys, monkeypatch):
    model_dir, training = os.path.join(exported_run[0], 'model'), kitti_copy / 'training'
    calibration_path = training / 'calib' / 'um_000000.txt'
    calibration_path.write_text(calibration_path.read_text().replace('P2: 7.215377000000e+02', 'P2: inf'))
    given = ['--images', str(training / 'image_2'), '--labels', str(training / 'gt_image_2')]
    scores = evaluate_command(['--model', model_dir, *given])
    assert scores['overall']['images'] == 6 and scores['bev']['overall']['images'] == 5
    assert scores['um']['images'] == 2 and scores['bev']['um']['images'] == 1
    printed = capsys.readouterr().out.splitlines()
    assert printed[-2:] == ["1 images are left out of the bird's-eye view (its tables count the images scored):",
                            f'  - {calibration_path}: its P2 line holds inf, not a finite number: expected "P2:" and '
                            "12 numbers (a 3x4 matrix, row by row). KITTI's data_road.zip holds each split's calib/ "
                            'folder beside image_2/: unpack it there, or replace this file with its copy from the zip.']

    subfolders = evaluate_command(['--model', model_dir, '--images', str(training), '--labels', str(training)])
    assert subfolders['overall'] == scores['overall']  # image_2/ and gt_image_2/ found under training/
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    os.symlink(model_dir, run_dir / 'model')
    with open(os.path.join(exported_run[0], 'config.json')) as config_file:
        config = {**json.load(config_file), 'data_dir': str(tmp_path)}  # its data_road/ is kitti_copy
    (run_dir / 'config.json').write_text(json.dumps(config))
    (run_dir / 'split.json').write_text(json.dumps({'train': [], 'val': ['um_000000.png', 'uu_000001.png']}))
    assert evaluate_command(['--run', str(run_dir)])['overall']['images'] == 2
    for missing in ('uu_000001.png', 'um_000000.png'):
        os.remove(training / 'image_2' / missing)
    with pytest.raises(SystemExit) as exited:
        evaluate_command(['--run', str(run_dir)])
    assert str(exited.value.code) == (
        f'error: 2 of the 2 validation images of the run are missing from {kitti_copy}: um_000000.png, uu_000001.png. '
        "The run's score is of all of them, so the others are not scored alone: put them back, or score the images "
        'you have with --images and --labels.')

    monkeypatch.setattr(commands, 'saved_model_predictor', lambda *args: pytest.fail('the model was loaded'))
    small_label, grey_label = (training / 'gt_image_2' / name for name in ('um_road_000001.png', 'umm_road_000000.png'))
    Image.open(small_label).resize((100, 30), Image.NEAREST).save(small_label)
    Image.open(grey_label).convert('L').save(grey_label)
    with pytest.raises(SystemExit) as exited:
        evaluate_command(['--model', model_dir, *given])
    lines = str(exited.value.code).splitlines()
    assert lines[0] == 'error: 2 of 4 labels cannot be scored; nothing was predicted:'
    small_image = training / 'image_2' / 'um_000001.png'
    assert lines[1].startswith(f'  - {small_label} is 100x30 pixels but its image {small_image} ')
    assert lines[2].startswith(f'  - {grey_label} is a 8-bit grey (L) image: expected a colour image (RGB) like')


def test_video_paints_every_frame_in_batches_and_keeps_fps_size_and_audio(exported_run, tmp_path, monkeypatch):
    run_dir = exported_run[0]
    rng = np.random.default_rng(10)
    frames = [rng.integers(0, 256, (60, 90, 3), dtype=np.uint8) for _ in range(20)]  # 90x60: not a multiple of 32
    tone = moviepy.AudioClip(lambda time_s: np.sin(2 * np.pi * 440 * time_s), duration=2, fps=22050)
    input_path, output_path = str(tmp_path / 'in.mp4'), str(tmp_path / 'new folder' / 'out.mp4')  # made by video
    moviepy.ImageSequenceClip(frames, fps=10).with_audio(tone).write_videofile(input_path, logger=None)
    batch_sizes = []
    load_predictor = saved_model_predictor

    def recording_predictor(model_dir, session_config=None, output='road_prob'):
        predict = load_predictor(model_dir, session_config, output)
        return lambda images: batch_sizes.append(len(images)) or predict(images)

    monkeypatch.setattr(commands, 'saved_model_predictor', recording_predictor)
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
    assert str(exited.value.code) == (f"error: {tmp_path / 'a file'} (OUT_VIDEO) is a file, not a folder: give "
                                      'another OUT_VIDEO.')


def half_written_then_disk_full(image, path, *args, **kwargs):
    """Image.save that writes a few bytes of path, then fails as on a full disk."""
    with open(path, 'wb') as image_file:
        image_file.write(b'\x89PNG')
    raise OSError(errno.ENOSPC, 'No space left on device')


def test_infer_into_a_file_or_a_read_only_or_full_folder_exits_with_one_paragraph(exported_run, tmp_path,
                                                                                   monkeypatch):
    image_path = tmp_path / 'um_000000.png'
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(image_path)
    (tmp_path / 'a file').write_text('')
    model_dir = os.path.join(exported_run[0], 'model')
    loaded = []
    monkeypatch.setattr(commands, 'saved_model_predictor', lambda *args: loaded.append(1) or pytest.fail('loaded'))
    for out, submission, expected in (
            (tmp_path / 'a file', [],
             f"error: {tmp_path / 'a file'} (--out) is a file, not a folder: give another --out."),
            (tmp_path / 'a file' / 'sub', ['--masks'],
             f"error: cannot write {tmp_path / 'a file' / 'sub'} (--out): a file stands where a folder should be "
             '(Not a directory). Give another --out, in a folder that can be written.')):
        with pytest.raises(SystemExit) as exited:
            infer_command([str(image_path), '--model', model_dir, '--out', str(out), *submission])
        assert str(exited.value.code) == expected
    read_only = tmp_path / 'read_only'

    def read_only_probe(dir=None):
        raise OSError(errno.EROFS, 'Read-only file system', os.path.join(dir, 'tmpprobe'))

    with monkeypatch.context() as patched:
        patched.setattr(files.tempfile, 'TemporaryFile', read_only_probe)
        with pytest.raises(SystemExit) as exited:
            infer_command([str(image_path), '--model', model_dir, '--out', str(read_only)])
    assert str(exited.value.code) == (f'error: cannot write {read_only} (--out): the file system is read-only '
                                      '(Read-only file system). Give another --out, in a folder that can be written.')
    assert not loaded

    monkeypatch.undo()
    monkeypatch.setattr(Image.Image, 'save', half_written_then_disk_full)
    with pytest.raises(SystemExit) as exited:
        infer_command([str(image_path), '--model', model_dir, '--out', str(tmp_path / 'full'), '--masks'])
    assert str(exited.value.code) == (f"error: cannot write {tmp_path / 'full'} (--out): the disk is full (No space "
                                      'left on device). Free some space there, or give another --out.')
    assert os.listdir(tmp_path / 'full' / 'overlays') == []  # the half-written image is gone


def test_a_video_cut_by_a_full_disk_is_not_reported_as_written(exported_run, tmp_path, monkeypatch):
    frames = [np.full((32, 48, 3), 40 * index, np.uint8) for index in range(4)]
    moviepy.ImageSequenceClip(frames, fps=4).write_videofile(str(tmp_path / 'in.mp4'), logger=None)
    model_dir = os.path.join(exported_run[0], 'model')
    monkeypatch.setattr(video.imageio_ffmpeg, 'count_frames_and_secs', lambda path: (2, 0.5))  # ffmpeg stopped early
    monkeypatch.setattr(video.shutil, 'disk_usage', lambda path: shutil._ntuple_diskusage(10 ** 9, 10 ** 9, 0))
    output_path = tmp_path / 'videos' / 'out.mp4'
    with pytest.raises(SystemExit) as exited:
        video_command([str(tmp_path / 'in.mp4'), str(output_path), '--model', model_dir])
    assert str(exited.value.code) == (f"error: cannot write {tmp_path / 'videos'} (OUT_VIDEO): the disk is full (No "
                                      'space left on device). Free some space there, or give another OUT_VIDEO.')
    assert os.listdir(tmp_path / 'videos') == []
    monkeypatch.setattr(video.shutil, 'disk_usage', lambda path: shutil._ntuple_diskusage(10 ** 9, 0, 10 ** 9))
    with pytest.raises(SystemExit) as exited:
        video_command([str(tmp_path / 'in.mp4'), str(output_path), '--model', model_dir])
    assert str(exited.value.code).startswith(f'error: ffmpeg wrote {output_path} with 2 frames readable of 4 painted')
    assert os.listdir(tmp_path / 'videos') == []


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
    assert data_check.summary['calibrations'] == (6, 6)
    missing_testing, blue_pixels = data_check.warnings
    assert 'testing/image_2 is missing' in missing_testing
    assert '1 of 6 labels' in blue_pixels and '(0, 0, 255) 33 pixels in umm_road_000009.png' in blue_pixels
    with pytest.raises(SystemExit):
        check_data_command(['--data', samples, '--require-testing'])
    assert f"error: {os.path.join(samples, 'testing', 'image_2')} is missing" in capsys.readouterr().out


def test_a_cityscapes_model_infers_masks_submissions_scores_and_videos(cityscapes_run, tmp_path, capsys):
    run_dir = cityscapes_run
    data_dir = json.load(open(os.path.join(run_dir, 'config.json')))['data_dir']
    val_dir = os.path.join(data_dir, 'demo', 'cityscapes', 'leftImg8bit', 'val')
    written = infer_command([val_dir + '/frankfurt', '--run', run_dir, '--out', str(tmp_path / 'out'), '--masks'])
    name = 'frankfurt_000000_000019_leftImg8bit'
    assert sorted(os.path.relpath(path, tmp_path / 'out') for path in written) == [
        f'masks/{name}_color.png', f'masks/{name}_trainIds.png', f'overlays/{name}.png']
    train_ids = np.asarray(Image.open(tmp_path / 'out' / 'masks' / f'{name}_trainIds.png'))
    colours = np.asarray(Image.open(tmp_path / 'out' / 'masks' / f'{name}_color.png'))
    assert train_ids.shape == (1024, 2048) and train_ids.max() < 19
    np.testing.assert_array_equal(colours, cityscapes.CLASS_COLOURS[train_ids])

    folder = infer_command(['--run', run_dir, '--out', str(tmp_path / 'submission'), '--cityscapes-submission'])
    assert os.listdir(folder) == ['berlin_000000_000019_labelIds.png']  # the run's leftImg8bit/test
    label_ids = np.asarray(Image.open(os.path.join(folder, 'berlin_000000_000019_labelIds.png')))
    assert set(np.unique(label_ids)) <= set(cityscapes.TRAIN_TO_LABEL_ID.tolist())
    with pytest.raises(SystemExit):
        infer_command([val_dir, '--run', run_dir, '--out', str(tmp_path / 'kitti'), '--kitti-submission'])
    assert '--kitti-submission is not for a cityscapes model' in capsys.readouterr().err

    scores = evaluate_command(['--run', run_dir])
    assert scores['mIoU'] == pytest.approx(json.load(open(os.path.join(run_dir, 'metrics.json')))['mIoU'], abs=1e-9)
    labels_dir = os.path.join(data_dir, 'demo', 'cityscapes', 'gtFine', 'val')
    given = evaluate_command(['--model', os.path.join(run_dir, 'model'), '--images', val_dir, '--labels', labels_dir])
    assert given['images'] == 2 and given['mIoU'] == pytest.approx(scores['mIoU'], abs=1e-9)

    frames = [np.asarray(Image.open(os.path.join(val_dir, 'frankfurt', f'{name}.png')).resize((128, 64)))] * 4
    moviepy.ImageSequenceClip(frames, fps=4).write_videofile(str(tmp_path / 'in.mp4'), logger=None)
    video_command([str(tmp_path / 'in.mp4'), str(tmp_path / 'out.mp4'), '--run', run_dir])
    assert imageio_ffmpeg.count_frames_and_secs(str(tmp_path / 'out.mp4'))[0] == 4


def test_cityscapes_layouts_twins_palette_labels_unknown_ids_bad_labels_and_missing_images(
        cityscapes_run, tmp_path, capsys, monkeypatch):
    with open(os.path.join(cityscapes_run, 'config.json')) as config_file:
        config = json.load(config_file)
    data = shutil.copytree(os.path.join(config['data_dir'], 'demo', 'cityscapes'),
                           tmp_path / 'data' / 'demo' / 'cityscapes')
    model_dir = os.path.join(cityscapes_run, 'model')
    os.makedirs(tmp_path / 'submission')
    (tmp_path / 'submission' / 'zurich_000001_000019_labelIds.png').write_bytes(b'of an earlier submission')
    folder = infer_command([str(data / 'leftImg8bit'), '--model', model_dir, '--out', str(tmp_path / 'submission'),
                            '--cityscapes-submission'])  # train, val and test: 4 + 2 + 1 images in city folders
    printed = capsys.readouterr().out
    assert len(os.listdir(folder)) == 8 and f'Wrote 7 label-id predictions to {folder}: ' in printed
    assert ('The folder also holds 1 other _labelIds.png files that this command did not write '
            '(zurich_000001_000019_labelIds.png): leave them out of the zip') in printed
    val_image = data / 'leftImg8bit' / 'val' / 'frankfurt' / 'frankfurt_000000_000019_leftImg8bit.png'
    os.makedirs(tmp_path / 'twin')
    shutil.copy(val_image, tmp_path / 'twin')
    for flag in ('--cityscapes-submission', '--masks'):
        with pytest.raises(SystemExit) as exited:
            infer_command([str(data / 'leftImg8bit' / 'val'), str(tmp_path / 'twin'), '--model', model_dir,
                           '--out', str(tmp_path / 'twins'), flag])
        assert f"{val_image} and {tmp_path / 'twin' / val_image.name} would write the same" in str(exited.value.code)
    assert not os.path.exists(tmp_path / 'twins')

    given = ['--model', model_dir, '--images', str(data / 'leftImg8bit' / 'val'),
             '--labels', str(data / 'gtFine' / 'val')]
    scores = evaluate_command(given)
    label_path = data / 'gtFine' / 'val' / 'frankfurt' / 'frankfurt_000000_000019_gtFine_labelIds.png'
    label_ids = np.asarray(Image.open(label_path))
    palette_label = Image.fromarray(label_ids).convert('P')
    palette_label.putpalette([channel for index in range(256) for channel in (index, 255 - index, 0)])
    palette_label.save(label_path)
    assert Image.open(label_path).mode == 'P' and evaluate_command(given) == scores
    unknown_ids = label_ids.copy()
    unknown_ids[:10, :30], unknown_ids[-1, :5] = 200, 34
    Image.fromarray(unknown_ids).save(label_path)
    capsys.readouterr()
    evaluate_command(given)
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "305 pixels of 1 labels hold ids outside the official table (label ids 0..33) and were ignored, as void "
        "pixels are; cityscapesscripts' evaluator would stop at them:",
        f'  - {label_path}: id 34 5 pixels, id 200 300 pixels']

    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    os.symlink(model_dir, run_dir / 'model')
    (run_dir / 'config.json').write_text(json.dumps({**config, 'data_dir': str(tmp_path / 'data')}))
    shutil.copy(os.path.join(cityscapes_run, 'split.json'), run_dir)
    os.remove(val_image)
    with pytest.raises(SystemExit) as exited:
        evaluate_command(['--run', str(run_dir)])
    assert str(exited.value.code).startswith(f'error: 1 of the 2 validation images of the run are missing from '
                                             f"{data}: {val_image.name}. The run's score is of all of them")
    shutil.rmtree(data / 'leftImg8bit' / 'test')
    with pytest.raises(SystemExit) as exited:
        infer_command(['--run', str(run_dir), '--out', str(tmp_path / 'no_test'), '--cityscapes-submission'])
    assert str(exited.value.code).startswith(f"error: {data / 'leftImg8bit' / 'test'} does not exist")

    monkeypatch.setattr(commands, 'saved_model_predictor', lambda *args: pytest.fail('the model was loaded'))
    other_label = data / 'gtFine' / 'val' / 'munster' / 'munster_000001_000019_gtFine_labelIds.png'
    Image.fromarray(label_ids).resize((1024, 512), Image.NEAREST).save(other_label)
    shutil.copy(label_path, tmp_path / 'label.png')
    Image.open(tmp_path / 'label.png').convert('RGB').save(label_path)
    shutil.copy(tmp_path / 'twin' / val_image.name, val_image)
    with pytest.raises(SystemExit) as exited:
        evaluate_command(given)
    lines = str(exited.value.code).splitlines()
    assert lines[0] == 'error: 2 of 2 labels cannot be scored; nothing was predicted:'
    assert lines[1] == (f'  - {label_path} is a RGB image: expected an 8-bit image of label ids (mode L, or P read as '
                        'its indices) like the <city>_<seq>_<frame>_gtFine_labelIds.png files of '
                        f'gtFine_trainvaltest.zip. Replace it with the label made for {val_image}.')
    assert lines[2].startswith(f'  - {other_label} is 1024x512 pixels but its image ')
    kitti_images = write_kitti_testing_images(tmp_path / 'kitti', ['um_000000'])
    with pytest.raises(SystemExit) as exited:
        infer_command([str(kitti_images), '--model', model_dir, '--out', str(tmp_path / 'kitti_out'),
                       '--cityscapes-submission'])
    assert str(exited.value.code) == (
        'error: no <city>_<seq>_<frame>_leftImg8bit.png was found among the 1 images given '
        f"({kitti_images / 'um_000000.png'}), so the benchmark has no name for their results: give the images of "
        'leftImg8bit/test (or leftImg8bit/val).')
    with pytest.raises(SystemExit) as exited:
        evaluate_command(['--model', model_dir, '--images', str(kitti_images), '--labels', str(tmp_path / 'kitti')])
    assert str(exited.value.code) == (
        f'error: no <city>_<seq>_<frame>_leftImg8bit.png was found in {kitti_images} or its subfolders: a '
        "Cityscapes model is scored on the images of leftImg8bit/val (or a folder of them) with gtFine/val's labels.")


def test_infer_evaluate_and_video_run_a_tflite_model_with_litert(kitti_tflite_run, tmp_path, capsys):
    tflite_path = os.path.join(kitti_tflite_run, 'model.tflite')
    image = np.random.default_rng(13).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / 'um_000001.png')
    infer_command([str(tmp_path / 'um_000001.png'), '--model', tflite_path, '--out', str(tmp_path / 'out'), '--masks'])
    assert f'LiteRT model {tflite_path}: int8' in capsys.readouterr().out
    road_prob, = tflite_predictor(tflite_path)([image])
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'out' / 'masks' / 'um_000001.png')),
                                  np.where(road_prob > 0.5, 255, 0))
    training_dir = os.path.join(kitti_tflite_run, 'data', 'data_road', 'training')
    scored = {model: evaluate_command(['--model', model, '--images', os.path.join(training_dir, 'image_2'),
                                       '--labels', os.path.join(training_dir, 'gt_image_2')])
              for model in (tflite_path, os.path.join(kitti_tflite_run, 'model'))}
    tflite_scores, saved_scores = scored.values()
    assert tflite_scores['overall']['MaxF'] == pytest.approx(saved_scores['overall']['MaxF'], abs=5)
    frames = [image[:40, :64]] * 3
    moviepy.ImageSequenceClip(frames, fps=3).write_videofile(str(tmp_path / 'in.mp4'), logger=None)
    video_command([str(tmp_path / 'in.mp4'), str(tmp_path / 'out.mp4'), '--model', tflite_path])
    assert imageio_ffmpeg.count_frames_and_secs(str(tmp_path / 'out.mp4'))[0] == 3
    zip_path = infer_command(['--model', tflite_path, '--out', str(tmp_path / 'submission'), '--kitti-submission'])
    assert zipfile.ZipFile(zip_path).namelist() == ['uu_road_000007.png']  # the run's testing image, in BEV


def test_a_tflite_in_its_run_folder_scores_the_runs_validation_images(cityscapes_run, capsys):
    tflite_path, _ = export_run(cityscapes_run, 'int8')
    saved_scores = evaluate_command(['--run', cityscapes_run])
    tflite_scores = evaluate_command(['--model', tflite_path])  # no --images: the run's split.json
    assert tflite_scores['images'] == saved_scores['images'] == 2
    assert tflite_scores['mIoU'] == pytest.approx(saved_scores['mIoU'], abs=5)


def test_a_file_that_is_not_a_tflite_model_stops_infer_naming_it(tmp_path, capsys):
    Image.new('RGB', (4, 4)).save(tmp_path / 'image.png')
    (tmp_path / 'notes.txt').write_text('not a model')  # a file given as --model is taken as a LiteRT file
    with pytest.raises(SystemExit) as exited:
        infer_command([str(tmp_path / 'image.png'), '--model', str(tmp_path / 'notes.txt'), '--out', str(tmp_path)])
    assert str(exited.value.code).startswith(f"error: {tmp_path / 'notes.txt'} is not a TFLite model")
    with pytest.raises(SystemExit):
        evaluate_command(['--model', str(tmp_path / 'elsewhere.tflite')])
    assert f"{tmp_path / 'elsewhere.tflite'} is in no run folder, so has no validation split" in capsys.readouterr().err


def test_a_bug_in_a_commands_work_keeps_its_traceback_and_a_project_error_exits_with_its_message(tmp_path,
                                                                                                 monkeypatch):
    def broadcast_bug(*args, **kwargs):
        np.zeros(3) + np.zeros(4)  # a bug, as numpy raises it: ValueError

    def damaged_weights(*args, **kwargs):
        raise ModelError('vgg16_weights.h5 is damaged')

    def missing_label(config):
        raise DataError('a label is missing')

    build_vgg = ['--weights', 'random', '--width', str(TINY_WIDTH), '--out', str(tmp_path / 'vgg')]
    monkeypatch.setattr('fcn8s.vgg.build_vgg16_savedmodel', broadcast_bug)
    with pytest.raises(ValueError, match='operands could not be broadcast together') as raised:
        build_vgg_command(build_vgg)
    assert type(raised.value) is ValueError and raised.traceback[-1].name == 'broadcast_bug'
    monkeypatch.setattr('fcn8s.vgg.build_vgg16_savedmodel', damaged_weights)
    with pytest.raises(SystemExit) as exited:
        build_vgg_command(build_vgg)
    assert exited.value.code == 'error: vgg16_weights.h5 is damaged'  # status 1, one line

    training = ['--demo', '--data-dir', str(tmp_path / 'data'), '--runs-dir', str(tmp_path / 'runs')]
    monkeypatch.setattr(main, 'prepare_data', broadcast_bug)
    with pytest.raises(ValueError, match='operands could not be broadcast together'):
        main.run(training)
    monkeypatch.setattr(main, 'prepare_data', missing_label)
    with pytest.raises(SystemExit) as exited:
        main.run(training)
    assert exited.value.code == 'error: a label is missing' and not os.path.exists(tmp_path / 'runs')
