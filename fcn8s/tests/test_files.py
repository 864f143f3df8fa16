"""Tests of fcn8s/files.py: a file or folder appears whole under its name, or keeps what it had."""
import os

import pytest

from fcn8s.files import check_output_path, write_atomically, written_whole


def test_a_folder_appears_whole_and_replaces_the_old_one(tmp_path):
    target = tmp_path / 'model'
    target.mkdir()
    (target / 'old.txt').write_text('old')
    with written_whole(str(target)) as partial:
        os.makedirs(partial)
        open(os.path.join(partial, 'new.txt'), 'w').write('new')
        assert partial == str(target) + '.partial' and os.listdir(target) == ['old.txt']
    assert os.listdir(target) == ['new.txt'] and sorted(os.listdir(tmp_path)) == ['model']


def test_a_failed_write_keeps_the_old_file_and_keeps_or_discards_the_partial_one(tmp_path):
    target = tmp_path / 'notes.txt'
    write_atomically(str(target), 'first')
    for discard, left_over in ((False, ['notes.txt', 'notes.txt.part']), (True, ['notes.txt'])):
        with pytest.raises(OSError, match='disk full'):
            with written_whole(str(target), str(target) + '.part', discard_partial_on_error=discard) as partial:
                open(partial, 'w').write('half')
                raise OSError('disk full')
        assert target.read_text() == 'first'
        assert sorted(os.listdir(tmp_path)) == left_over
    write_atomically(str(target), 'second')
    assert target.read_text() == 'second' and sorted(os.listdir(tmp_path)) == ['notes.txt']


def test_a_leftover_of_a_killed_write_is_removed_first(tmp_path):
    target = tmp_path / 'checkpoint'
    leftover = tmp_path / '.partial-checkpoint'
    leftover.mkdir()
    (leftover / 'model.index').write_text('from a write that was killed')
    with written_whole(str(target), str(leftover)) as partial:
        assert not os.path.exists(partial)
        os.makedirs(partial)
    assert os.listdir(tmp_path) == ['checkpoint'] and os.listdir(target) == []


def test_a_folder_where_a_file_goes_is_refused_and_left_with_its_contents(tmp_path):
    target = tmp_path / 'kitti_road_submission.zip'
    target.mkdir()
    (target / 'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match=f'{target} is a folder, where this command writes a file: it is left'):
        check_output_path(str(target))
    with pytest.raises(FileExistsError, match='is a folder, where this command writes a file'):
        with written_whole(str(target)) as partial:
            open(partial, 'w').write('zip')
    assert sorted(os.listdir(tmp_path)) == ['kitti_road_submission.zip'] and os.listdir(target) == ['notes.txt']
    (tmp_path / 'model').write_text('a file')
    with pytest.raises(FileExistsError, match='is a file, where this command writes a folder'):
        with written_whole(str(tmp_path / 'model')) as partial:
            os.makedirs(partial)
    assert (tmp_path / 'model').read_text() == 'a file' and not os.path.exists(tmp_path / 'model.partial')
    check_output_path(str(tmp_path / 'model'))  # a file may replace a file
    check_output_path(str(target), folder=True)  # and a folder a folder
    check_output_path(str(tmp_path / 'absent'))
