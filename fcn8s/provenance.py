"""Which weights a run's derived files came from, and the refusal of one that is no longer the run's.

A run derives files from its trained weights: model/ (export_model), overlays/ (save_inference_samples) and
model.tflite (export). Each carries a weights record, {"epoch": the epoch whose weights it holds,
"variables_sha256": the sha256 of model/variables}: model/ in assets.extra/weights.json, overlays/ in
made_from.json, a LiteRT file in its metadata. A resumed run trains on after its model/ was written, so a
command that uses a run's model/ or model.tflite first checks that it is the run's current one.
"""
import json
import os

from fcn8s.checkpoints import CheckpointFolder
from fcn8s.errors import DataError
from fcn8s.files import folder_sha256, write_atomically

MODEL_WEIGHTS_FILE = os.path.join('assets.extra', 'weights.json')  # the weights record of an exported model
OVERLAYS_RECORD = 'made_from.json'  # the weights record of a run's overlays/


class StaleModel(DataError):
    """A run's model/ or model.tflite holds other weights than the run's current ones; the message says what to do."""


def write_model_record(model_dir, epoch):
    """Write model_dir's weights record (the epoch and the sha256 of its variables/) into it; returns the record."""
    record = {'epoch': epoch, 'variables_sha256': folder_sha256(os.path.join(model_dir, 'variables'))}
    write_atomically(os.path.join(model_dir, MODEL_WEIGHTS_FILE), json.dumps(record))
    return record


def read_model_record(model_dir):
    """The weights record in model_dir, or None for a model exported before records were kept (or unreadable)."""
    try:
        with open(os.path.join(model_dir, MODEL_WEIGHTS_FILE)) as record_file:
            record = json.load(record_file)
        return record if isinstance(record, dict) and isinstance(record.get('epoch'), int) else None
    except (OSError, ValueError):
        return None


def write_overlays_record(overlays_dir, record):
    """Write the weights record of the model that painted overlays_dir's images into it."""
    write_atomically(os.path.join(overlays_dir, OVERLAYS_RECORD), json.dumps(record))


def describe(record):
    """'epoch 3 (weights sha256 1a2b3c4d5e6f...)' of a weights record."""
    return f"epoch {record['epoch']} (weights sha256 {record['variables_sha256'][:12]}...)"


def check_run_model(run_dir, model_dir):
    """Raise StaleModel when model_dir, the model/ of the run in run_dir, holds an earlier epoch's weights than the
    run's last finished epoch (a run resumed after its export that has not finished). A model without a record, or a
    run without checkpoints, passes."""
    record, last = read_model_record(model_dir), CheckpointFolder(os.path.join(run_dir, 'checkpoint')).last_finished()
    if record is None or last is None or last[0] <= record['epoch']:
        return
    raise StaleModel(f'{model_dir} holds the weights of {describe(record)}, but {run_dir} has trained on to epoch '
                     f'{last[0]} since: it is not the run\'s current model. Finish the run with `python main.py '
                     f'--resume {run_dir}`, which exports its model again, or copy {model_dir} out of the run folder '
                     f'to use epoch {record["epoch"]}\'s model as it is.')


def check_run_tflite(tflite_path, metadata, run_dir):
    """Raise StaleModel when the LiteRT file tflite_path of the run in run_dir (its metadata, litert.read_metadata)
    was exported from other weights than the run's model/ now holds. A file or model without a record passes."""
    exported_from = metadata.get('weights')
    model_dir = os.path.join(run_dir, 'model')
    current = read_model_record(model_dir)
    if not exported_from or current is None or exported_from == current:
        return
    raise StaleModel(f'{tflite_path} was exported from the weights of {describe(exported_from)}, but {model_dir} now '
                     f'holds those of {describe(current)}: the file is not the run\'s current model. Export it again: '
                     f'python main.py export --run {run_dir}')
