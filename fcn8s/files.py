"""Files and folders that appear whole or not at all: written under a temporary name, then renamed."""
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile

from fcn8s.errors import UnwritableOutput

# Why a write failed, in words, by errno: the errors that writing_into explains.
WRITE_PROBLEMS = {
    errno.ENOSPC: 'the disk is full',
    errno.EDQUOT: 'the disk quota is used up',
    errno.EROFS: 'the file system is read-only',
    errno.EACCES: 'permission is denied',
    errno.EPERM: 'the operation is not permitted',
    errno.EEXIST: 'a file stands where a folder should be',
    errno.ENOTDIR: 'a file stands where a folder should be',
    errno.ENOENT: 'no file can be made there',  # the output folder or one beside it (writing_into)
}
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def remove_path(path):
    """Delete the file or folder at path, if there is one."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def check_output_path(path, folder=False):
    """Raise UnwritableOutput naming path when what stands there is not the kind of output the project writes there.

    A file (or with folder, a folder) may replace a file (a folder) that the project wrote before; anything
    else at path, such as a user's folder where a zip goes, is left as it is, and the write is refused.
    """
    kind, other_kind = ('folder', 'file') if folder else ('file', 'folder')
    if os.path.lexists(path) and os.path.isdir(path) != folder:
        raise UnwritableOutput(f'{path} is a {other_kind}, where this command writes a {kind}: it is left as it is. '
                               f'Move or rename it, or give another output folder.')


@contextlib.contextmanager
def written_whole(path, partial_path=None, discard_partial_on_error=False):
    """Yield a temporary path to write a file or folder into; when the block ends normally, rename it to path.

    partial_path defaults to path + '.partial'. A leftover of an earlier write that was killed is deleted
    first, and what stood at path is replaced at the end when it is of the kind written (check_output_path):
    otherwise UnwritableOutput is raised, path is left as it is and the partial write deleted. When the block
    raises, path keeps what it had; the partial write stays (the next write deletes it), or is deleted with
    discard_partial_on_error.
    """
    partial_path = partial_path or path + '.partial'
    remove_path(partial_path)
    try:
        yield partial_path
    except BaseException:
        if discard_partial_on_error:
            remove_path(partial_path)
        raise
    try:
        check_output_path(path, folder=os.path.isdir(partial_path))
    except UnwritableOutput:
        remove_path(partial_path)
        raise
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.replace(partial_path, path)


MANIFEST = 'made.json'  # in a folder that ensure_made made: its settings and the relative path of every file


@contextlib.contextmanager
def folder_lock(folder):
    """Hold an exclusive lock (flock) on the folder, made when missing, for the block; other holders wait their turn."""
    os.makedirs(folder, exist_ok=True)
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield folder
    finally:
        os.close(descriptor)  # which releases the lock


def missing_files(folder):
    """The files that folder's MANIFEST lists and it lacks ([] for a whole folder); None when it has no manifest."""
    try:
        with open(os.path.join(folder, MANIFEST)) as manifest_file:
            listed = json.load(manifest_file)['files']
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return [MANIFEST]
    return [name for name in listed if not os.path.isfile(os.path.join(folder, name))]


def made_settings(folder):
    """The settings that folder's MANIFEST records, {} when it has none."""
    try:
        with open(os.path.join(folder, MANIFEST)) as manifest_file:
            return json.load(manifest_file).get('settings', {})
    except (OSError, ValueError, AttributeError):
        return {}


def missing_parts(path, reusable=None):
    """What ensure_made(path, ..., reusable) would make again ([] for nothing): ['everything'] for no folder, the
    files its manifest lists and it lacks, or, without a manifest, the part that reusable(path) found missing."""
    if not os.path.isdir(path):
        return ['everything']
    missing = missing_files(path)
    if missing is None:
        return [] if reusable is None or reusable(path) else ['a part that earlier versions did not make']
    return missing


def ensure_made(path, settings, make, what, reusable=None):
    """The folder path as make(folder) writes it: made when missing or incomplete, else reused; returns path.

    settings ({name: value}, JSON) are what make uses, kept in the MANIFEST with every file's relative
    path. make writes into a staging folder beside path, renamed to path when whole: a folder at path is
    always whole. One that lacks a file of its manifest (damaged since) is made again, and said so; one
    without a manifest (an earlier version's, or the user's) is reused when reusable(path) (default:
    always), else made again. A folder made with other settings is reused, saying which: only a missing
    or incomplete folder is made. Callers at the same time (two first demos) take turns on a lock of the
    parent folder: the first makes it, the others reuse it.
    """
    parent = os.path.dirname(os.path.abspath(path))
    with folder_lock(parent):
        missing = missing_parts(path, reusable)
        if not missing:
            differing = {name: value for name, value in made_settings(path).items() if settings.get(name) != value}
            if differing:
                print(f'Reusing {what} in {path}, made with ' + ', '.join(
                    f'{name} {value} (asked: {settings.get(name)})' for name, value in differing.items())
                      + '. Only missing or incomplete data is made: delete the folder to make it with these settings.')
            return path
        if os.path.isdir(path):
            print(f'{path} lacks {len(missing)} of its files ({missing[0]}, ...): making {what} again')
        staging = os.path.join(parent, f'.partial-{os.path.basename(path)}')
        remove_path(staging)  # a killed maker's leftover: nobody else holds the lock
        make(staging)
        files = sorted(os.path.relpath(os.path.join(folder, name), staging)
                       for folder, _, names in os.walk(staging) for name in names)
        with open(os.path.join(staging, MANIFEST), 'w') as manifest_file:
            json.dump({'settings': settings, 'files': files}, manifest_file, indent=1)
        remove_path(path)
        os.rename(staging, path)
    return path


def write_problem(error):
    """Why the OSError `error` stopped a write, in words: 'the disk is full (No space left on device)'."""
    system_words = error.strerror or str(error)
    problem = WRITE_PROBLEMS.get(error.errno)
    return f'{problem} ({system_words})' if problem else system_words


def is_folder_or_beside(path, folder):
    """Whether path is unknown (None), folder itself or beside it (a staging folder made next to it)."""
    folder_parent = os.path.dirname(os.path.abspath(folder))
    return path is None or os.path.dirname(os.path.abspath(os.fsdecode(path))) == folder_parent


@contextlib.contextmanager
def writing_into(folder, option):
    """A block that writes into folder, given by the command-line option or argument `option` ('--out').

    An OSError of WRITE_PROBLEMS in the block (a full disk, a read-only file system, no permission, a
    file in the way; folder, or a folder beside it, not found as it is made: a file system that makes no files,
    such as /proc, or a parent removed meanwhile) is raised again as UnwritableOutput naming the folder, the
    option, the problem and what to do; other errors pass unchanged.
    """
    try:
        yield folder
    except OSError as error:
        missing_input = error.errno == errno.ENOENT and not is_folder_or_beside(error.filename, folder)
        if isinstance(error, UnwritableOutput) or error.errno not in WRITE_PROBLEMS or missing_input:
            raise
        place = f'{error.filename} in ' if error.filename and error.filename != folder else ''
        advice = (f'Free some space there, or give another {option}' if error.errno in DISK_FULL
                  else f'Give another {option}, in a folder that can be written')
        raise UnwritableOutput(f'cannot write {place}{folder} ({option}): {write_problem(error)}. {advice}.'
                               ) from error


def writable_folder(folder, option):
    """Make folder (and its parents) when missing and check that a file can be written in it; returns folder.

    option names where folder comes from, as in writing_into. Raises UnwritableOutput when a file
    stands at folder, or it cannot be written (read-only, no permission, a full disk): before anything
    is computed for it.
    """
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UnwritableOutput(f'{folder} ({option}) is a file, not a folder: give another {option}.')
    with writing_into(folder, option):
        os.makedirs(folder, exist_ok=True)
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            raise OSError(error.errno, error.strerror) from error  # not the probe's name: the folder is named
    return folder


def write_atomically(path, text):
    """Write text to path, synced to disk before the rename: path holds its old text or all the new."""
    with written_whole(path) as partial_path, open(partial_path, 'w', newline='') as partial_file:
        partial_file.write(text)
        partial_file.flush()
        os.fsync(partial_file.fileno())


def sha256_of(path):
    """The hex sha256 of the file at path."""
    with open(path, 'rb') as opened:
        return hashlib.file_digest(opened, 'sha256').hexdigest()


def folder_sha256(folder):
    """The hex sha256 of every file under folder: of each one's path relative to folder and its sha256, in order of
    path. Two folders of the same files with the same contents have the same digest."""
    listing = sorted(os.path.relpath(os.path.join(parent, name), folder)
                     for parent, _, names in os.walk(folder) for name in names)
    return hashlib.sha256(json.dumps([[path, sha256_of(os.path.join(folder, path))] for path in listing]).encode()
                          ).hexdigest()


def move_files(source_dir, target_dir, relative_paths):
    """Move the files relative_paths of source_dir to the same places under target_dir, replacing what is there.

    Nothing else in target_dir is touched; missing subfolders are made.
    """
    for relative_path in relative_paths:
        target_path = os.path.join(target_dir, relative_path)
        os.makedirs(os.path.dirname(target_path), exist_ok=True)
        os.replace(os.path.join(source_dir, relative_path), target_path)
