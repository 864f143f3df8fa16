"""A run's folder, runs/<timestamp>/: its creation, loss.csv, split.json, and metrics.json with the PR curve."""
import csv
import io
import json
import math
import os
import time

from tqdm import tqdm

from fcn8s import kitti
from fcn8s.config import save_config
from fcn8s.files import write_atomically

LOSS_CSV_COLUMNS = ('epoch', 'step', 'loss', 'cross_entropy', 'l2')  # loss = cross_entropy + l2


def new_run_dir(config):
    """Create config.runs_dir/<YYYYmmdd-HHMMSS>/ (with a suffix if that name is taken) holding config.json.

    Raises OSError naming the folder, and what to do, when it cannot be written.
    """
    stamp = time.strftime('%Y%m%d-%H%M%S')
    try:
        for attempt in range(100):
            run_dir = os.path.join(config.runs_dir, stamp if attempt == 0 else f'{stamp}-{attempt}')
            try:
                os.makedirs(run_dir)
            except FileExistsError:
                continue
            save_config(config, run_dir)
            return run_dir
        raise FileExistsError(f'could not create a new run folder under {config.runs_dir}')
    except OSError as error:
        raise OSError(f'cannot write a run folder in {config.runs_dir} ({error}). Make it writable, or choose '
                      'another folder with --runs-dir.') from error


def save_split(run_dir, train_pairs, val_pairs):
    """Write run_dir/split.json: the file names of the training and the held-out validation images."""
    write_atomically(os.path.join(run_dir, 'split.json'), json.dumps(
        {'train': kitti.image_names_of(train_pairs), 'val': kitti.image_names_of(val_pairs)}, indent=1))


def read_split(run_dir):
    """{'train': [image file names], 'val': [...]} of run_dir/split.json."""
    with open(os.path.join(run_dir, 'split.json')) as split_file:
        return json.load(split_file)


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
    A row torn by a kill mid-write is skipped.
    """
    if not os.path.exists(csv_path):
        return []
    loss_rows = []
    with open(csv_path, newline='') as csv_file:
        for fields in list(csv.reader(csv_file))[1:]:
            try:
                losses = [float(field) for field in fields[2:len(LOSS_CSV_COLUMNS)]]
                loss_rows.append((int(fields[0]), int(fields[1]), losses[0],
                                  *losses[1:], *[math.nan] * (len(LOSS_CSV_COLUMNS) - 2 - len(losses))))
            except (ValueError, IndexError):
                continue
    return loss_rows


def restart_loss_csv(csv_path, start_epoch):
    """Rewrite csv_path keeping the rows of the epochs before start_epoch: a new run's header, a resumed run's past."""
    write_loss_csv([row for row in read_loss_csv(csv_path) if row[0] < start_epoch], csv_path)


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
        scores = dataset.score(evaluation)
        history.append({'epoch': epoch, **dataset.history_entry(scores)})
        tqdm.write(f'Validation after epoch {epoch} ({len(val_pairs)} images), '
                   + dataset.format_scores(scores, evaluation))
        write_atomically(metrics_path, json.dumps({'epoch': epoch, **scores, 'history': history}, indent=2))
        dataset.save_pictures(evaluation, run_dir)
        return scores

    return validate
