"""`python main.py export`: a run's model as a LiteRT file for the car, int8 calibrated on the run's own images."""
import os

from fcn8s.commands import command_parser, exits_on_error
from fcn8s.config import load_run_config, positive_int
from fcn8s.datasets import DATASETS
from fcn8s.errors import DataError, SettingError
from fcn8s.files import check_output_path, writable_folder, writing_into
from fcn8s.litert import TFLITE_FILE
from fcn8s.litert_export import CALIBRATION_IMAGES, QUANTIZATIONS, calibration_sample, export_tflite
from fcn8s.provenance import check_run_model, read_model_record
from fcn8s.run_folder import read_split


def export_run(run_dir, quantization='int8', tflite_path=None, calibration_count=CALIBRATION_IMAGES):
    """export_tflite of the run in run_dir: its model/, dataset and training size; returns (path written, metadata).

    tflite_path defaults to run_dir/model.tflite. int8 is calibrated on calibration_count of the run's
    training images (its split.json), drawn with the run's seed; the file records which weights it holds
    (provenance). Raises SettingError or DataError naming what is missing, StaleModel when model/ is not the run's
    current model, and UnwritableOutput naming the output when it cannot be written, before converting when that can
    be told.
    """
    config = load_run_config(run_dir)
    dataset, model_dir = DATASETS[config.dataset], os.path.join(run_dir, 'model')
    if not os.path.isdir(model_dir):
        raise SettingError(f'{run_dir} has no model/ folder, the SavedModel that training exports at its end: '
                           f'export a finished run, or finish this one with `python main.py --resume {run_dir}`.')
    check_run_model(run_dir, model_dir)
    calibration_paths = []
    if quantization == 'int8':
        dataset_path = dataset.path(config.dataset_dir)
        try:
            train_pairs = dataset.training_pairs(dataset.training_folder(dataset_path), read_split(run_dir)['train'])
        except DataError as error:
            raise DataError(f'cannot list the training images of {run_dir} in {dataset_path} ({error}), which '
                            'calibrate int8: put the dataset back there, or export with --quantize fp16 or none.'
                            ) from error
        if not train_pairs:
            raise DataError(f'none of the training images of {run_dir} (split.json) is in {dataset_path}; int8 is '
                            'calibrated on them: put the dataset back there, or export with --quantize fp16 or none.')
        calibration_paths = calibration_sample([image_path for image_path, _ in train_pairs], calibration_count,
                                               config.seed)
    tflite_path = tflite_path or os.path.join(run_dir, TFLITE_FILE)
    output_folder = writable_folder(os.path.dirname(os.path.abspath(tflite_path)), '--out')  # before converting
    check_output_path(tflite_path)
    with writing_into(output_folder, '--out'):
        return tflite_path, export_tflite(model_dir, dataset, config.image_shape, tflite_path, quantization,
                                          calibration_paths, read_model_record(model_dir))


def export_command(argv):
    """`python main.py export`: a run's model as a LiteRT file, for the car; returns the path written."""
    parser = command_parser(
        'export',
        "Write a run's model as a LiteRT (TFLite) file, which runs with PyPI's ai-edge-litert and no TensorFlow: "
        "the network at the run's training size (images are resized to it outside the file), road probability "
        '(KITTI Road) or class probabilities and ids (Cityscapes) out. infer, video and evaluate run it with '
        '--model FILE.tflite.')
    parser.add_argument('--run', required=True, help='run folder written by training, e.g. runs/<timestamp>')
    parser.add_argument('--format', choices=('tflite',), default='tflite', help='file format (default: %(default)s)')
    parser.add_argument('--quantize', choices=tuple(QUANTIZATIONS), default='int8',
                        help="int8: weights and activations in 8 bits, calibrated on the run's training images "
                             '(about 4x smaller and several times faster on a CPU); fp16: float16 weights; none: '
                             'float32 (default: %(default)s)')
    parser.add_argument('--calibration-images', type=positive_int, default=CALIBRATION_IMAGES,
                        help="training images of the run that calibrate int8, drawn with the run's seed "
                             '(default: %(default)s)')
    parser.add_argument('--out', metavar='FILE', help='the file to write (default: RUN/model.tflite)')
    arguments = parser.parse_args(argv)
    with exits_on_error():
        tflite_path, metadata = export_run(arguments.run, arguments.quantize, arguments.out,
                                           arguments.calibration_images)
    print(f"Wrote {tflite_path} ({os.path.getsize(tflite_path) / 1e6:.1f} MB): {metadata['dataset']}, "
          f"{metadata['precision']}, input {metadata['image_height']}x{metadata['image_width']}")
    return tflite_path
