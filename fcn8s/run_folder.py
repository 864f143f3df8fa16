"""A run's folder, runs/<timestamp>/: its creation, loss.csv, split.json, and metrics.json with the PR curve."""
import csv
import io
import json
import math
import os
import time

from tqdm import tqdm

from fcn8s.checkpoints import CheckpointFolder
from fcn8s.config import save_config
from fcn8s.datasets import DATASETS
from fcn8s.errors import DataError, SettingError, UnwritableOutput
from fcn8s.files import sha256_of, write_atomically
from fcn8s.options import command_line

LOSS_CSV_COLUMNS = ('epoch', 'step', 'loss', 'cross_entropy', 'l2')  # loss = cross_entropy + l2


def new_run_dir(config, vgg16=None):
    """Create config.runs_dir/<YYYYmmdd-HHMMSS>/ (with a suffix if that name is taken) holding config.json, which
    records vgg16 too, the weights record of the VGG16 the run starts from (vgg.read_weights_record).

    Raises UnwritableOutput naming the folder, and what to do, when it cannot be written.
    """
    stamp = time.strftime('%Y%m%d-%H%M%S')
    try:
        for attempt in range(100):
            run_dir = os.path.join(config.runs_dir, stamp if attempt == 0 else f'{stamp}-{attempt}')
            try:
                os.makedirs(run_dir)
            except FileExistsError:
                continue
            save_config(config, run_dir, vgg16)
            return run_dir
        raise FileExistsError(f'could not create a new run folder under {config.runs_dir}')
    except OSError as error:
        raise UnwritableOutput(f'cannot write a run folder in {config.runs_dir} ({error}). Make it writable, or '
                               'choose another folder with --runs-dir.') from error


def check_startable(config, resume_dir=None):
    """Raise SettingError or UnwritableOutput when the run cannot go on (check_resumable) or a new one cannot start,
    before any data is made: config.data_dir is a file, config.runs_dir cannot take a run folder (check_runs_dir), or
    the demo data still to be made would not fit config (the dataset's check_demo_settings)."""
    if os.path.exists(config.data_dir) and not os.path.isdir(config.data_dir):
        raise SettingError(f'--data-dir {config.data_dir} is a file, not a folder: give the folder that holds (or is '
                           'to hold) vgg/ and the dataset, such as data.')
    if resume_dir:
        return check_resumable(resume_dir, config)
    check_runs_dir(config.runs_dir)
    if config.demo:
        dataset = DATASETS[config.dataset]
        dataset.check_demo_settings(dataset.path(config.dataset_dir), config)


def check_runs_dir(runs_dir):
    """Raise UnwritableOutput naming runs_dir when a run folder cannot be made in it (a file on its path, its nearest
    existing folder not writable), without making anything."""
    existing = os.path.abspath(runs_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    problem = ('is a file' if not os.path.isdir(existing) else
               'cannot be written' if not os.access(existing, os.W_OK | os.X_OK) else None)
    if problem:
        raise UnwritableOutput(f'cannot write a run folder in {runs_dir} ({existing} {problem}). Make it writable, '
                               'or choose another folder with --runs-dir.')


def check_resumable(run_dir, config):
    """Raise SettingError when the run in run_dir cannot go on as config (its config.json, --epochs) says.

    Read before anything is made or changed: its checkpoint/ must hold a finished epoch whose epoch.json
    and checkpoint index can be read, of a model that scores as many classes as config.dataset has (a
    config.json that names the other dataset is said to), and no more finished epochs than config.epochs.
    """
    checkpoints = CheckpointFolder(os.path.join(run_dir, 'checkpoint'))
    class_counts = checkpoints.readable_class_counts()
    if not class_counts:
        raise SettingError(f'{checkpoints.folder} holds no intact finished epoch, so {run_dir} has nothing to resume; '
                           f'its files are left as they are. Start a new run instead: {command_line(config)}')
    dataset, trained_classes = DATASETS[config.dataset], next(iter(class_counts.values()))
    if trained_classes != dataset.num_classes:
        trained_datasets = [name for name, other in DATASETS.items() if other.num_classes == trained_classes]
        put_back = (f'Put "dataset": "{trained_datasets[0]}" back in it to resume this run, or start'
                    if trained_datasets else 'Start')
        raise SettingError(
            f"{os.path.join(run_dir, 'config.json')} names the dataset {config.dataset}, of {dataset.num_classes} "
            f'classes, but the checkpoints in {checkpoints.folder} are of a model of {trained_classes} classes'
            + (f' ({trained_datasets[0]})' if trained_datasets else '') + ': the file was changed after the run '
            f'began. {put_back} a new run of {config.dataset}: {command_line(config)}')
    if max(class_counts) > config.epochs:
        raise SettingError(f'{run_dir} has finished {max(class_counts)} epochs; --epochs {config.epochs} is fewer. '
                           f'Give --epochs {max(class_counts)} to export its model, or more to train on.')


def file_digests(pairs, dataset_path):
    """{path relative to dataset_path: hex sha256} of every image and label file of [(image path, label path)]."""
    paths = [path for pair in pairs for path in pair]
    return {os.path.relpath(path, dataset_path): sha256_of(path)
            for path in tqdm(paths, desc='Digests of the split', unit='file', leave=False, disable=len(paths) < 100)}


def run_split(dataset, dataset_path, config, resume_dir=None):
    """(train_pairs, val_pairs, split record) of a run in dataset_path: drawn by the dataset (dataset.split) for a
    new run; for a resumed one, the split it began with, read from resume_dir/split.json.

    The record is what save_split writes: the image names of both parts, and the sha256 of each of their files
    (image and label), by path relative to dataset_path. Raises DataError when a resumed run's split.json cannot
    be read, or names a file that is missing or whose contents changed since the run began (split.json of an
    earlier version, without digests, is checked by names alone).
    """
    if not resume_dir:
        train_pairs, val_pairs = dataset.split(dataset_path, config)
    else:
        recorded = read_split(resume_dir)
        train_pairs = dataset.training_pairs(dataset.training_folder(dataset_path), recorded['train'])
        val_pairs = dataset.named_validation_pairs(dataset_path, recorded['val'])
        found = set(image_names_of(train_pairs + val_pairs))
        missing = [name for name in recorded['train'] + recorded['val'] if name not in found]
        if missing:
            raise DataError(f"{len(missing)} image(s) of the split of {resume_dir} (split.json) are missing from "
                            f"{dataset_path}: {', '.join(missing)}. A resumed run trains and validates on the images "
                            'it began with: put them back, or start a new run.')
    digests = file_digests(train_pairs + val_pairs, dataset_path)
    changed = resume_dir and [path for path, digest in recorded.get('sha256', {}).items() if digests.get(path) != digest]
    if changed:
        raise DataError(f'{len(changed)} file(s) of the split of {resume_dir} (split.json) are not the files it began '
                        f"with, their contents changed: {', '.join(os.path.join(dataset_path, path) for path in changed)}"
                        '. A resumed run goes on with the data it began with: put the original files back, or start '
                        'a new run.')
    print(f'{len(train_pairs)} training images, {len(val_pairs)} for validation'
          + (f' (the split of {resume_dir}).' if resume_dir else '.'))
    split = {'train': image_names_of(train_pairs), 'val': image_names_of(val_pairs), 'sha256': digests}
    return train_pairs, val_pairs, split


def image_names_of(pairs):
    """[file name of each image] of [(image path, label path)] pairs: how split.json names them."""
    return [os.path.basename(image_path) for image_path, _ in pairs]


def save_split(run_dir, split):
    """Write run_split's split record to run_dir/split.json."""
    write_atomically(os.path.join(run_dir, 'split.json'), json.dumps(split, indent=1))


def read_split(run_dir):
    """{'train': [image file names], 'val': [...], 'sha256': {path in the dataset folder: sha256}} of
    run_dir/split.json ('sha256' is missing from an earlier version's). Raises DataError naming a missing or
    unreadable file."""
    split_path = os.path.join(run_dir, 'split.json')
    try:
        with open(split_path) as split_file:
            split = json.load(split_file)
        if not all(isinstance(split.get(part), list) for part in ('train', 'val')):
            raise ValueError('it has no lists "train" and "val"')
    except (OSError, ValueError, AttributeError) as error:
        raise DataError(f'cannot read {split_path}, the names of the images {run_dir} trains and validates on '
                        f'({error}). Put back the file the run wrote, or start a new run.') from error
    return split


def run_folder_of(model_path):
    """The run folder that holds model_path (RUN/model, RUN/model.tflite): its parent when that holds config.json and
    split.json; None for no path or any other."""
    if not model_path:
        return None
    run_dir = os.path.dirname(os.path.abspath(model_path))
    is_run = all(os.path.isfile(os.path.join(run_dir, name)) for name in ('config.json', 'split.json'))
    return run_dir if is_run else None


def write_loss_csv(loss_rows, csv_path):
    """Write [(epoch, step, loss, cross_entropy, l2)] as a CSV with a header row, replacing csv_path whole."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(LOSS_CSV_COLUMNS)
    writer.writerows(loss_rows)
    write_atomically(csv_path, text.getvalue())


def append_loss_rows(loss_rows, csv_path):
    """Append [(epoch, step, loss, cross_entropy, l2)] to the CSV at csv_path and sync them to disk."""
    with open(csv_path, 'a', newline='') as csv_file:
        csv.writer(csv_file).writerows(loss_rows)
        csv_file.flush()
        os.fsync(csv_file.fileno())


def read_loss_csv(csv_path):
    """[(epoch, step, loss, cross_entropy, l2)] of a loss.csv ([] when there is none).

    The loss parts are NaN in a row without them (loss.csv of an earlier version has only the loss).
    A row torn by a kill mid-write is skipped: a last line without its end of line (its last number may
    be cut short), or a row of fewer fields than the header or of a field that is not a number.
    """
    if not os.path.exists(csv_path):
        return []
    with open(csv_path, newline='') as csv_file:
        lines = csv_file.read().splitlines(keepends=True)
    if lines and not lines[-1].endswith('\n'):
        lines.pop()
    loss_rows = []
    table = list(csv.reader(lines))
    column_count = len(table[0]) if table else 0
    for fields in table[1:]:
        try:
            if len(fields) != column_count:
                raise ValueError(f'{len(fields)} fields')
            losses = [float(field) for field in fields[2:len(LOSS_CSV_COLUMNS)]]
            loss_rows.append((int(fields[0]), int(fields[1]), losses[0],
                              *losses[1:], *[math.nan] * (len(LOSS_CSV_COLUMNS) - 2 - len(losses))))
        except (ValueError, IndexError):
            continue
    return loss_rows


def step_ranges(steps):
    """'1-3, 5' of the sorted step numbers [1, 2, 3, 5]."""
    ranges = []
    for step in steps:
        if ranges and step == ranges[-1][1] + 1:
            ranges[-1][1] = step
        else:
            ranges.append([step, step])
    return ', '.join(str(first) if first == last else f'{first}-{last}' for first, last in ranges)


def restart_loss_csv(csv_path, start_epoch, steps_per_epoch=None):
    """Rewrite csv_path keeping the rows of the epochs before start_epoch: a new run's header, a resumed run's past.

    With steps_per_epoch, the steps of those epochs that no complete row holds (a loss.csv cut by a kill
    or a full disk) are named in a printed warning. Returns {epoch: [lost steps]}.
    """
    kept_rows = [row for row in read_loss_csv(csv_path) if row[0] < start_epoch]
    write_loss_csv(kept_rows, csv_path)
    lost = {}
    for epoch in range(1, start_epoch if steps_per_epoch else 1):
        kept_steps = {row[1] for row in kept_rows if row[0] == epoch}
        lost_steps = [step for step in range(1, steps_per_epoch + 1) if step not in kept_steps]
        if lost_steps:
            lost[epoch] = lost_steps
    if lost:
        print(f'warning: {csv_path} had lost the losses of ' + '; '.join(
            f'epoch {epoch} step{"s" if len(steps) > 1 else ""} {step_ranges(steps)}' for epoch, steps in lost.items())
              + f' (of {steps_per_epoch} steps an epoch; a kill or a full disk cut the file). Every complete row is '
              'kept; loss.png and the loss watch go on without the lost ones.')
    return lost


def validator(dataset, predict, val_pairs, config, run_dir, start_epoch=1):
    """on_epoch_end hook for train_nn: scores val_pairs after the last epoch and every config.eval_every epochs.

    dataset (fcn8s.datasets) evaluates predict's predictions. Each evaluation prints its tables and
    rewrites run_dir/metrics.json (the latest scores, with the dataset's history entry of every
    evaluated epoch under 'history') and the dataset's pictures (KITTI: pr_curve.png, with BEV curves,
    and bev_<category>.png; Cityscapes: confusion_matrix.png). A resumed run (start_epoch > 1) keeps
    the history of the epochs before start_epoch.
    """
    metrics_path = os.path.join(run_dir, 'metrics.json')
    history = []
    if start_epoch > 1 and os.path.exists(metrics_path):
        with open(metrics_path) as metrics_file:
            history = [entry for entry in json.load(metrics_file)['history'] if entry['epoch'] < start_epoch]

    def validate(epoch, epoch_loss_rows):
        due = epoch == config.epochs or (config.eval_every and epoch % config.eval_every == 0)
        if not val_pairs or not due:
            return None
        evaluation = dataset.evaluate(predict, val_pairs)
        try:
            scores = dataset.score(evaluation)
        except DataError as error:
            tqdm.write(f'Validation after epoch {epoch} ({len(val_pairs)} images) scores nothing: {error}')
            return None
        history.append({'epoch': epoch, **dataset.history_entry(scores)})
        tqdm.write(f'Validation after epoch {epoch} ({len(val_pairs)} images), '
                   + dataset.format_scores(scores, evaluation))
        write_atomically(metrics_path, json.dumps({'epoch': epoch, **scores, 'history': history}, indent=2))
        dataset.save_pictures(evaluation, run_dir)
        return scores

    return validate
