"""Files and folders that appear whole or not at all: written under a temporary name, then renamed."""
import contextlib
import os
import shutil


def remove_path(path):
    """Delete the file or folder at path, if there is one."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def check_output_path(path, folder=False):
    """Raise FileExistsError naming path when what stands there is not the kind of output the project writes there.

    A file (or with folder, a folder) may replace a file (a folder) that the project wrote before; anything
    else at path, such as a user's folder where a zip goes, is left as it is, and the write is refused.
    """
    kind, other_kind = ('folder', 'file') if folder else ('file', 'folder')
    if os.path.lexists(path) and os.path.isdir(path) != folder:
        raise FileExistsError(f'{path} is a {other_kind}, where this command writes a {kind}: it is left as it is. '
                              f'Move or rename it, or give another output folder.')


@contextlib.contextmanager
def written_whole(path, partial_path=None, discard_partial_on_error=False):
    """Yield a temporary path to write a file or folder into; when the block ends normally, rename it to path.

    partial_path defaults to path + '.partial'. A leftover of an earlier write that was killed is deleted
    first, and what stood at path is replaced at the end when it is of the kind written (check_output_path):
    otherwise FileExistsError is raised, path is left as it is and the partial write deleted. When the block
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
    except FileExistsError:
        remove_path(partial_path)
        raise
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.replace(partial_path, path)


def write_atomically(path, text):
    """Write text to path, synced to disk before the rename: path holds its old text or all the new."""
    with written_whole(path) as partial_path, open(partial_path, 'w', newline='') as partial_file:
        partial_file.write(text)
        partial_file.flush()
        os.fsync(partial_file.fileno())


def move_files(source_dir, target_dir, relative_paths):
    """Move the files relative_paths of source_dir to the same places under target_dir, replacing what is there.

    Nothing else in target_dir is touched; missing subfolders are made.
    """
    for relative_path in relative_paths:
        target_path = os.path.join(target_dir, relative_path)
        os.makedirs(os.path.dirname(target_path), exist_ok=True)
        os.replace(os.path.join(source_dir, relative_path), target_path)
