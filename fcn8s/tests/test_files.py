"""Tests of fcn8s/files.py: a file or folder appears whole under its name, or keeps what it had."""
import errno
import json
import os
import subprocess
import sys

import pytest

from fcn8s.errors import UnwritableOutput
from fcn8s.files import (MANIFEST, check_output_path, ensure_made, writable_folder, write_atomically, writing_into,
                         written_whole)


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
    with pytest.raises(UnwritableOutput, match=f'{target} is a folder, where this command writes a file: it is left'):
        check_output_path(str(target))
    with pytest.raises(UnwritableOutput, match='is a folder, where this command writes a file'):
        with written_whole(str(target)) as partial:
            open(partial, 'w').write('zip')
    assert sorted(os.listdir(tmp_path)) == ['kitti_road_submission.zip'] and os.listdir(target) == ['notes.txt']
    (tmp_path / 'model').write_text('a file')
    with pytest.raises(UnwritableOutput, match='is a file, where this command writes a folder'):
        with written_whole(str(tmp_path / 'model')) as partial:
            os.makedirs(partial)
    assert (tmp_path / 'model').read_text() == 'a file' and not os.path.exists(tmp_path / 'model.partial')
    check_output_path(str(tmp_path / 'model'))  # a file may replace a file
    check_output_path(str(target), folder=True)  # and a folder a folder
    check_output_path(str(tmp_path / 'absent'))


def test_writing_into_explains_write_failures_and_passes_other_errors(tmp_path):
    with pytest.raises(UnwritableOutput) as refused:
        with writing_into(str(tmp_path), '--out'):
            raise OSError(errno.EDQUOT, 'Disk quota exceeded', str(tmp_path / 'a.png'))
    assert str(refused.value) == (f"cannot write {tmp_path / 'a.png'} in {tmp_path} (--out): the disk quota is used up "
                                  '(Disk quota exceeded). Free some space there, or give another --out.')
    with pytest.raises(FileNotFoundError):
        with writing_into(str(tmp_path), '--out'):
            open(tmp_path / 'missing.png')
    with pytest.raises(UnwritableOutput, match=r'cannot write /proc/out \(--out\): no file can be made there'):
        with writing_into('/proc/out', '--out'):
            os.makedirs('/proc/out')  # a file system that makes no files: the folder is not found as it is made


def test_writable_folder_makes_the_folder_and_leaves_nothing_in_it(tmp_path):
    assert writable_folder(str(tmp_path / 'new' / 'out'), '--out') == str(tmp_path / 'new' / 'out')
    assert os.listdir(tmp_path / 'new' / 'out') == []


def write_two_files(folder, text='made'):
    """A maker for ensure_made: folder/a.txt and folder/sub/b.txt."""
    os.makedirs(os.path.join(folder, 'sub'))
    for name in ('a.txt', os.path.join('sub', 'b.txt')):
        with open(os.path.join(folder, name), 'w') as made_file:
            made_file.write(text)


def test_ensure_made_makes_once_reuses_with_other_settings_and_remakes_an_incomplete_folder(tmp_path, capsys):
    path = str(tmp_path / 'data')
    assert ensure_made(path, {'count': 2}, write_two_files, 'the test data') == path
    assert sorted(os.listdir(path)) == ['a.txt', MANIFEST, 'sub'] and os.listdir(tmp_path) == ['data']
    assert json.load(open(os.path.join(path, MANIFEST))) == {'settings': {'count': 2}, 'files': ['a.txt', 'sub/b.txt']}
    ensure_made(path, {'count': 5}, lambda folder: pytest.fail('made again for another setting'), 'the test data')
    assert capsys.readouterr().out == (f'Reusing the test data in {path}, made with count 2 (asked: 5). Only '
                                       'missing or incomplete data is made: delete the folder to make it with these '
                                       'settings.\n')
    os.remove(os.path.join(path, 'sub', 'b.txt'))
    ensure_made(path, {'count': 5}, lambda folder: write_two_files(folder, 'again'), 'the test data')
    assert open(os.path.join(path, 'sub', 'b.txt')).read() == 'again'
    assert f'{path} lacks 1 of its files (sub/b.txt, ...): making the test data again' in capsys.readouterr().out


def test_ensure_made_leaves_nothing_at_the_path_when_the_maker_fails_and_reuses_a_folder_without_manifest(tmp_path):
    path = str(tmp_path / 'data')

    def killed_maker(folder):
        write_two_files(folder)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ensure_made(path, {}, killed_maker, 'the test data')
    assert not os.path.exists(path)
    ensure_made(path, {}, write_two_files, 'the test data')  # the killed maker's staging folder is cleared first
    assert os.listdir(tmp_path) == ['data']
    users = str(tmp_path / 'users')
    os.makedirs(users)
    ensure_made(users, {}, lambda folder: pytest.fail('a folder without manifest was made again'), 'the test data')
    ensure_made(users, {}, write_two_files, 'the test data', reusable=lambda folder: False)  # e.g. lacks calib/
    assert sorted(os.listdir(users)) == ['a.txt', MANIFEST, 'sub']


SLOW_MAKER = """
import os, sys, time
from fcn8s.files import ensure_made

def make(folder):
    os.makedirs(folder)
    with open(os.path.join(sys.argv[2], 'makers.log'), 'a') as log:
        log.write(str(os.getpid()) + '\\n')
    for index in range(20):
        time.sleep(0.05)
        open(os.path.join(folder, f'{index}.txt'), 'w').close()

ensure_made(sys.argv[1], {}, make, 'the test data')
print(len(os.listdir(sys.argv[1])))
"""


def test_two_processes_that_ensure_one_folder_together_both_get_it_whole_and_only_one_makes_it(tmp_path):
    path = tmp_path / 'fresh' / 'data'
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    makers = [subprocess.Popen([sys.executable, '-c', SLOW_MAKER, str(path), str(tmp_path)], cwd=here,
                               stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [maker.communicate(timeout=60)[0] for maker in makers]
    assert [maker.returncode for maker in makers] == [0, 0]
    assert outputs == ['21\n', '21\n']  # 20 files and the manifest, seen whole by both
    assert len((tmp_path / 'makers.log').read_text().splitlines()) == 1
