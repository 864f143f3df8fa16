"""Tests of fcn8s/files.py: a file or folder appears whole under its name, or keeps what it had."""
import errno
import os

import pytest

from fcn8s.errors import UnwritableOutput
from fcn8s.files import writable_folder, write_atomically, writing_into, written_whole


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


def test_writing_into_explains_write_failures_and_passes_other_errors(tmp_path):
    with pytest.raises(UnwritableOutput) as refused:
        with writing_into(str(tmp_path), '--out'):
            raise OSError(errno.EDQUOT, 'Disk quota exceeded', str(tmp_path / 'a.png'))
    assert str(refused.value) == (f"cannot write {tmp_path / 'a.png'} in {tmp_path} (--out): the disk quota is used up "
                                  '(Disk quota exceeded). Free some space there, or give another --out.')
    with pytest.raises(FileNotFoundError):
        with writing_into(str(tmp_path), '--out'):
            open(tmp_path / 'missing.png')


def test_writable_folder_makes_the_folder_and_leaves_nothing_in_it(tmp_path):
    assert writable_folder(str(tmp_path / 'new' / 'out'), '--out') == str(tmp_path / 'new' / 'out')
    assert os.listdir(tmp_path / 'new' / 'out') == []
