"""Tests of fcn8s/files.py: a file or folder appears whole under its name, or keeps what it had."""
import os

import pytest

from fcn8s.files import write_atomically, written_whole


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
