"""Tests of fcn8s/provenance.py: a run's derived files say which weights they came from, and a stale one is refused;
with them, the clear errors of a damaged model and of an export that cannot be written."""
import errno
import json
import os
import shutil

import pytest

import main
from fcn8s import export, files
from fcn8s.export import export_run
from fcn8s.files import folder_sha256
from fcn8s.litert import read_metadata
from fcn8s.provenance import MODEL_WEIGHTS_FILE, OVERLAYS_RECORD, StaleModel, read_model_record


@pytest.fixture
def run_copy(cityscapes_run, tmp_path):
    """A copy of the finished 2-epoch cityscapes_run that a test may change, without a model.tflite."""
    return str(shutil.copytree(cityscapes_run, tmp_path / 'run', ignore=shutil.ignore_patterns('model.tflite')))


def overlay_image(run_dir):
    """An image file of run_dir's overlays/, to infer on."""
    return os.path.join(run_dir, 'overlays', sorted(name for name in os.listdir(os.path.join(run_dir, 'overlays'))
                                                    if name.endswith('.png'))[0])


def exit_message(argv):
    """The message with which `python main.py argv...` exits."""
    with pytest.raises(SystemExit) as stopped:
        main.run(argv)
    return str(stopped.value.code)


def test_a_finished_runs_model_and_overlays_record_the_epoch_and_digest_of_their_weights(cityscapes_run):
    model_dir = os.path.join(cityscapes_run, 'model')
    record = read_model_record(model_dir)
    assert record == {'epoch': 2, 'variables_sha256': folder_sha256(os.path.join(model_dir, 'variables'))}
    with open(os.path.join(cityscapes_run, 'overlays', OVERLAYS_RECORD)) as overlays_record:
        assert json.load(overlays_record) == record


def test_a_model_that_the_runs_later_epochs_left_behind_is_refused_with_what_to_do(run_copy, capsys):
    later = os.path.join(run_copy, 'checkpoint', 'epoch-003')  # as a resumed run leaves it, stopped before its end
    shutil.copytree(os.path.join(run_copy, 'checkpoint', 'epoch-002'), later)
    with open(os.path.join(later, 'epoch.json'), 'w') as description:
        json.dump({'epoch': 3, 'val_score': None}, description)
    model_dir = os.path.join(run_copy, 'model')
    expected = (f'error: {model_dir} holds the weights of epoch 2 (weights sha256 ',
                f'but {run_copy} has trained on to epoch 3 since: it is not the run\'s current model. Finish the run '
                f'with `python main.py --resume {run_copy}`, which exports its model again, or copy {model_dir} out '
                'of the run folder to use epoch 2\'s model as it is.')
    for argv in (['evaluate', '--run', run_copy], ['evaluate', '--model', model_dir],
                 ['infer', '--run', run_copy, '--out', os.path.join(run_copy, 'painted'), overlay_image(run_copy)]):
        message = exit_message(argv)
        assert message.startswith(expected[0]) and message.endswith(expected[1]), argv
    with pytest.raises(StaleModel):
        export_run(run_copy, 'none')
    assert not os.path.exists(os.path.join(run_copy, 'model.tflite'))


def test_a_litert_file_exported_before_the_model_changed_is_refused_and_export_makes_it_current(run_copy, capsys):
    tflite_path = os.path.join(run_copy, 'model.tflite')
    main.run(['export', '--run', run_copy, '--quantize', 'none'])
    record = read_model_record(os.path.join(run_copy, 'model'))
    assert read_metadata(tflite_path)['weights'] == record
    assert main.run(['evaluate', '--model', tflite_path])
    newer = {'epoch': 4, 'variables_sha256': 'f' * 64}  # the model/ that a resumed run exports at its end
    with open(os.path.join(run_copy, 'model', MODEL_WEIGHTS_FILE), 'w') as record_file:
        json.dump(newer, record_file)
    message = exit_message(['evaluate', '--model', tflite_path])
    assert message == (f"error: {tflite_path} was exported from the weights of epoch 2 (weights sha256 "
                       f"{record['variables_sha256'][:12]}...), but {os.path.join(run_copy, 'model')} now holds those "
                       f"of epoch 4 (weights sha256 ffffffffffff...): the file is not the run's current model. Export "
                       f"it again: python main.py export --run {run_copy}")
    outside = shutil.copy(tflite_path, os.path.join(os.path.dirname(run_copy), 'kept.tflite'))  # no run's name
    painted = os.path.join(os.path.dirname(run_copy), 'painted')
    main.run(['infer', overlay_image(run_copy), '--model', outside, '--out', painted])
    assert os.listdir(painted)
    main.run(['export', '--run', run_copy, '--quantize', 'none'])
    assert read_metadata(tflite_path)['weights'] == newer  # model/'s record now: export made the file current


def test_damaged_model_weights_are_named_with_how_to_write_them_again(run_copy, capsys):
    [weights_file] = [os.path.join(run_copy, 'model', 'variables', name)
                      for name in os.listdir(os.path.join(run_copy, 'model', 'variables')) if '.data-' in name]
    with open(weights_file, 'rb') as original:
        content = original.read()
    for damaged in (content[:len(content) // 2], content[:100] + bytes([content[100] ^ 0xFF]) + content[101:]):
        with open(weights_file, 'wb') as weights:
            weights.write(damaged)
        for argv in (['export', '--run', run_copy, '--quantize', 'none'],
                     ['infer', '--run', run_copy, '--out', os.path.join(run_copy, 'painted'), overlay_image(run_copy)]):
            message = exit_message(argv)
            assert message.startswith(f"error: cannot load the model in {os.path.join(run_copy, 'model')} ("), argv
            assert 'Graph execution error' not in message, argv  # what went wrong, not where
            assert message.endswith('a damaged one is written again from the run\'s last checkpoint by `python '
                                    'main.py --resume RUN_DIR`.'), argv
    main.run(['--resume', run_copy])  # every epoch is trained: it exports the model again from its checkpoint
    assert read_model_record(os.path.join(run_copy, 'model'))['epoch'] == 2
    assert main.run(['export', '--run', run_copy, '--quantize', 'none']) == os.path.join(run_copy, 'model.tflite')


def test_an_export_that_cannot_be_written_is_refused_before_converting_naming_the_path(run_copy, tmp_path,
                                                                                       monkeypatch):
    in_the_way = tmp_path / 'a_file'
    in_the_way.write_text('not a folder')
    message = exit_message(['export', '--run', run_copy, '--quantize', 'none', '--out', str(in_the_way / 'm.tflite')])
    assert message == f'error: {in_the_way} (--out) is a file, not a folder: give another --out.'
    message = exit_message(['export', '--run', run_copy, '--quantize', 'none', '--out',
                            str(in_the_way / 'cars' / 'm.tflite')])
    assert message.startswith(f"error: cannot write {in_the_way / 'cars'} (--out): a file stands where a folder should "
                              'be (') and message.endswith('Give another --out, in a folder that can be written.')
    folder = tmp_path / 'folder.tflite'
    folder.mkdir()
    message = exit_message(['export', '--run', run_copy, '--quantize', 'none', '--out', str(folder)])
    assert message.startswith(f'error: {folder} is a folder, where this command writes a file: it is left as it is.')

    def read_only(**options):
        raise OSError(errno.EROFS, 'Read-only file system', options['dir'])

    monkeypatch.setattr(files.tempfile, 'TemporaryFile', read_only)  # as on a read-only mount, which root can't make
    monkeypatch.setattr(export, 'export_tflite', lambda *arguments: pytest.fail('converted before the check'))
    message = exit_message(['export', '--run', run_copy, '--quantize', 'none'])
    assert message == (f'error: cannot write {run_copy} (--out): the file system is read-only (Read-only file '
                       'system). Give another --out, in a folder that can be written.')
