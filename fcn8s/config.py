"""A run's settings: the TrainConfig dataclass, its defaults and checks, and the config.json that each run keeps.

The training command line that makes a TrainConfig is fcn8s.options."""
import argparse
import dataclasses
import json
import math
import os

from fcn8s.augmentation import Augmentation
from fcn8s.datasets import DATASET_NAMES, DATASETS
from fcn8s.errors import SettingError
from fcn8s.files import write_atomically
from fcn8s.precision_names import PRECISIONS


def image_side(text):
    """argparse type of --image-height and --image-width: a positive multiple of 32, as FCN-8s's strides need."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f'must be positive, got {value}')
    if value % 32:
        raise argparse.ArgumentTypeError(f'{value} is not a multiple of 32')
    return value


def positive_int(text):
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


# What each number setting may be, beyond its type: (test, what the test asks). FCN-8s's strides need image sides that
# are multiples of 32; numpy's seed lies in 0 .. 2**32 - 1.
AT_LEAST_ONE = (lambda value: value >= 1, 'must be at least 1')
NOT_NEGATIVE = (lambda value: value >= 0, 'must not be negative')
POSITIVE = (lambda value: value > 0, 'must be positive')
MULTIPLE_OF_32 = (lambda value: value > 0 and value % 32 == 0, 'must be a positive multiple of 32')
SETTING_RANGES = {
    'epochs': AT_LEAST_ONE, 'batch_size': AT_LEAST_ONE, 'replicas': NOT_NEGATIVE, 'worker_timeout': AT_LEAST_ONE,
    'val_count': NOT_NEGATIVE, 'eval_every': NOT_NEGATIVE,
    'frozen_blocks': (lambda value: 0 <= value <= 5, 'must lie in 0 .. 5 (VGG16 has five blocks)'),
    'learning_rate': POSITIVE,
    'keep_prob': (lambda value: 0 < value <= 1, 'must lie in (0, 1]'),
    'image_height': MULTIPLE_OF_32, 'image_width': MULTIPLE_OF_32, 'l2_scale': NOT_NEGATIVE,
    'init_stddev': NOT_NEGATIVE, 'divergence_ratio': NOT_NEGATIVE,
    'seed': (lambda value: 0 <= value < 2 ** 32, 'must lie in 0 .. 4294967295'),
    'demo_vgg_width': POSITIVE, 'demo_train_per_category': AT_LEAST_ONE, 'demo_test_per_category': NOT_NEGATIVE,
}
RANGE_REASONS = {'learning_rate': 'Adam with a rate of zero or below does not learn, or climbs the loss'}
TYPE_NAMES = {bool: 'true or false', int: 'an integer', float: 'a finite number', str: 'a string'}


class BadSettings(SettingError):
    """TrainConfig values that no run can have: problems, [(field name, what is wrong with its value)]."""

    def __init__(self, problems):
        self.problems = problems
        super().__init__(self.naming(lambda name: name))

    def naming(self, name_of):
        """The problems in one line, each setting called name_of(field name) (a flag, or config.json's key)."""
        return '; '.join(f'{name_of(name)} {problem}' for name, problem in self.problems)


def value_problem(field, value):
    """What is wrong with value as TrainConfig's field (its type, choices and SETTING_RANGES), or None."""
    if field.type is float:
        fits = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    else:
        fits = isinstance(value, field.type) and (field.type is bool or not isinstance(value, bool))
    if not fits:
        return f'must be {TYPE_NAMES[field.type]}, got {value!r}'
    choices = field.metadata['choices']
    if choices and value not in choices:
        return f"must be one of {', '.join(choices)}, got {value!r}"
    test, asks = SETTING_RANGES.get(field.name, (None, None))
    if test and not test(value):
        reason = RANGE_REASONS.get(field.name)
        return f'{asks}, got {value!r}' + (f': {reason}' if reason else '')
    return None


def flag(name):
    """The command-line option of TrainConfig's field name: --batch-size for batch_size."""
    return '--' + name.replace('_', '-')


def setting(default, help_text, choices=None, parse=None):
    """A TrainConfig field with its command-line help, the values it may take and its argparse type, if given."""
    return dataclasses.field(default=default, metadata={'help': help_text, 'choices': choices, 'parse': parse})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run, with the classic project's values as defaults; saved as config.json."""
    epochs: int = setting(40, 'passes over the training images')
    batch_size: int = setting(4, 'images per training step, split over the replicas')
    replicas: int = setting(0, 'devices that train data-parallel (tf.distribute): 0, every GPU of this machine '
                               '(one device without GPUs); N > 1 without GPUs splits the CPU into N logical '
                               'devices. Several machines: set TF_CONFIG on each')
    worker_timeout: int = setting(600, 'several workers: seconds each waits for the others to join, and for a step '
                                       'or a graph operation, before it stops (a lost worker is noticed sooner)')
    learning_rate: float = setting(5e-4, 'Adam learning rate')
    learning_rate_decay: str = setting('none', 'none: the rate stays --learning-rate; cosine: it falls from there '
                                               'to 0 along half a cosine over the run\'s steps',
                                       choices=('none', 'cosine'))
    keep_prob: float = setting(0.5, 'dropout keep probability of fc6 and fc7 while training')
    image_height: int = setting(160, 'network input height in pixels, a multiple of 32', parse=image_side)
    image_width: int = setting(576, 'network input width in pixels, a multiple of 32', parse=image_side)
    l2_scale: float = setting(1e-3, 'L2 weight decay on the decoder kernels: scale * sum(w**2) / 2')
    init_stddev: float = setting(1e-3, 'standard deviation of the 1x1 score kernels at initialisation')
    pool_scaling: bool = setting(True, 'scale pool4 by 1e-2 and pool3 by 1e-4 before scoring them')
    train_encoder: bool = setting(True, 'fine-tune the VGG16 weights too (the classic project did); '
                                        'otherwise train the decoder only')
    frozen_blocks: int = setting(0, 'VGG16 blocks, from the input, whose convolutions keep the loaded weights '
                                    '(0: none, 5: all; fc6 and fc7 train): the first blocks are the most generic '
                                    'and the costliest to back-propagate')
    val_count: int = setting(48, 'images scored at validation (0: none): KITTI training images held out, '
                                 'stratified over um/umm/uu; the first of Cityscapes\' val split')
    eval_every: int = setting(0, 'also score the validation images every N epochs (0: only after the last)')
    divergence_ratio: float = setting(10.0, "stop training when an epoch's mean loss exceeds this many times the "
                                            "lowest epoch mean so far (0: never)")
    augment_flip: bool = setting(True, 'augment: mirror training images left-right at random')
    augment_color: bool = setting(True, 'augment: jitter brightness and contrast')
    augment_scale: bool = setting(True, 'augment: zoom in by up to 1.25 about a random point')
    precision: str = setting('auto', 'arithmetic of training and inference: fp32; bf16, mixed bfloat16 on CPUs '
                                     'with AVX-512 BF16; fp16, mixed float16 on NVIDIA GPUs; auto, the fastest '
                                     'this machine has', choices=('auto', *PRECISIONS))
    seed: int = setting(0, 'seed of weight initialisation, shuffling, the split and the synthetic data')
    dataset: str = setting('kitti_road', 'what to learn: kitti_road (KITTI Road in DATA_DIR/data_road, road or not) '
                                         'or cityscapes (DATA_DIR/cityscapes, 19 classes); kept in config.json',
                           choices=DATASET_NAMES)
    data_dir: str = setting('data', 'data folder holding vgg/ and data_road/ or cityscapes/ (with --demo: its demo/ '
                                    'subfolder)')
    runs_dir: str = setting('runs', 'folder that receives runs/<timestamp>/')
    demo: bool = setting(False, 'offline: synthetic data of the dataset and a builder-made random VGG16 under '
                                'DATA_DIR/demo')
    demo_vgg_width: float = setting(0.25, 'channel width of the demo VGG16 (1.0 = real VGG16)')
    demo_train_per_category: int = setting(20, 'synthetic training images per category (um, umm, uu); for '
                                               'cityscapes, in all')
    demo_test_per_category: int = setting(4, 'synthetic testing images per category')

    def __post_init__(self):
        """Check every value (value_problem); raise BadSettings naming each bad one. Integers of float settings
        become floats."""
        problems = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            problem = value_problem(field, value)
            if problem:
                problems.append((field.name, problem))
            elif field.type is float:
                object.__setattr__(self, field.name, float(value))
        if problems:
            raise BadSettings(problems)

    def learning_rate_at(self, steps_per_epoch, epoch, step):
        """The learning rate of step (from 1) of epoch (from 1) in a run of steps_per_epoch steps an epoch."""
        if self.learning_rate_decay == 'none':
            return self.learning_rate
        progress = ((epoch - 1) * steps_per_epoch + step - 1) / (self.epochs * steps_per_epoch)
        return self.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))

    @property
    def image_shape(self):
        """(height, width) of the network input."""
        return self.image_height, self.image_width

    @property
    def dataset_dir(self):
        """The data folder this run uses, holding data_road/ or cityscapes/: data_dir, or its demo/ subfolder."""
        return os.path.join(self.data_dir, 'demo') if self.demo else self.data_dir

    @property
    def augmentation(self):
        """The augmentation.Augmentation of these settings, or None when all are off."""
        augmentation = Augmentation(self.augment_flip, self.augment_color, self.augment_scale)
        return augmentation if any(dataclasses.astuple(augmentation)) else None


# The demo's VGG16 is random, not pre-trained, and the demo trains for about a minute. Measured on the
# synthetic set: fine-tuning a random VGG16 with Adam diverged after 4 to 6 epochs at every learning rate
# tried (5e-4 down to 5e-5), so the demo trains the decoder on the encoder's fixed random features; and with
# pool scaling the skip scores, whose inputs are 1e-2 and 1e-4 times smaller while Adam's steps are not,
# stayed too weak to paint anything finer than fc7's 32-pixel cells in that time.
DEMO_CONFIG = TrainConfig(demo=True, epochs=30, train_encoder=False, pool_scaling=False, val_count=12)


def dataset_settings(dataset_name, demo):
    """{setting: value} of the dataset's own defaults, which replace TrainConfig's (and DEMO_CONFIG's with demo)."""
    dataset = DATASETS[dataset_name]
    return {**dataset.default_settings, **(dataset.demo_settings if demo else {})}


def default_config(dataset_name, demo):
    """The TrainConfig of no option but --dataset and --demo: TrainConfig's defaults, DEMO_CONFIG's with demo, and
    the dataset's own (dataset_settings)."""
    return dataclasses.replace(DEMO_CONFIG if demo else TrainConfig(), **dataset_settings(dataset_name, demo))


# config.json's format: 1 (no "config_version") held the settings alone; 2 adds "config_version" and "vgg16", the
# record of the VGG16 SavedModel the run started from (vgg.read_weights_record), which is not a setting.
CONFIG_VERSION = 2
RUN_FOLDER_SETTINGS = ('data_dir', 'runs_dir')  # the settings that are folders


def save_config(config, run_dir, vgg16=None):
    """Write config as run_dir/config.json, with its format and vgg16, the record of the VGG16 the run started from.

    Its folders (RUN_FOLDER_SETTINGS) are written as absolute paths, so that the run's commands find them from
    any current folder. Without vgg16 the record already in run_dir/config.json is kept: a resumed run started
    where it started.
    """
    config_path = os.path.join(run_dir, 'config.json')
    if vgg16 is None and os.path.isfile(config_path):
        vgg16 = read_config_file(config_path)[1]
    record = {'config_version': CONFIG_VERSION, **dataclasses.asdict(config),
              **{name: os.path.abspath(getattr(config, name)) for name in RUN_FOLDER_SETTINGS}}
    write_atomically(config_path, json.dumps(record if vgg16 is None else {**record, 'vgg16': vgg16}, indent=2))


def read_config_file(config_path):
    """({setting: value}, vgg16 record or None) of a config.json; raises SettingError naming the file and its problem.

    The settings may be some of TrainConfig's only; their values are checked when a TrainConfig is made of them.
    A file that is not JSON, not an object, of a newer format, or holding keys that are not settings is refused.
    """
    try:
        with open(config_path) as config_file:
            settings = json.load(config_file)
    except (OSError, ValueError) as error:
        raise SettingError(f'{config_path} cannot be read as a config.json ({error}); give a run\'s config.json, such '
                           'as runs/<timestamp>/config.json, or asset/real_kitti_cpu.json.') from error
    if not isinstance(settings, dict):
        raise SettingError(f'{config_path} holds a JSON {type(settings).__name__}, not the object of settings that a '
                           'config.json holds; give a run\'s config.json or asset/real_kitti_cpu.json.')
    version = settings.pop('config_version', 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= CONFIG_VERSION:
        raise SettingError(f'{config_path} has config_version {version!r}; this main.py reads config_version 1 to '
                           f'{CONFIG_VERSION}. A file written by a newer version needs that version of the project.')
    vgg16 = settings.pop('vgg16', None)
    unknown = sorted(settings.keys() - {field.name for field in dataclasses.fields(TrainConfig)})
    if unknown:
        raise SettingError(f"{config_path} is not a config.json of this project: it holds settings no run has: "
                           f"{', '.join(unknown)}. `python main.py --help` lists the settings.")
    return settings, vgg16


def load_config_file(config_path, chosen=None):
    """The TrainConfig of a config.json's settings (read_config_file) over the defaults of its dataset and demo,
    which chosen ({setting: value} given beside it) may change; raises SettingError naming the file and each bad key."""
    settings = read_config_file(config_path)[0]
    choices = {**settings, **(chosen or {})}
    dataset_name = choices.get('dataset') if choices.get('dataset') in DATASETS else TrainConfig.dataset
    try:  # a bad dataset or demo value is named by TrainConfig's checks, over the plain defaults
        return dataclasses.replace(default_config(dataset_name, choices.get('demo') is True), **settings)
    except BadSettings as bad:
        raise SettingError(f'{config_path} holds values no run can have: {bad}. Correct them in that file '
                           '(`python main.py --help` describes each setting), or start a new run.') from bad


def load_run_config(run_dir):
    """The TrainConfig saved in run_dir/config.json, its folders absolute (folder_started_in reads relative ones);
    raises SettingError naming the file when it holds none."""
    config_path = os.path.join(run_dir, 'config.json')
    if not os.path.isfile(config_path):
        raise SettingError(f'{config_path} is not the config.json of a run (there is no such file); give a run folder '
                           'written by `python main.py`, such as runs/<timestamp>.')
    config = load_config_file(config_path)
    started_in = folder_started_in(run_dir, config.runs_dir)
    return dataclasses.replace(config, **{name: os.path.join(started_in, getattr(config, name))
                                          for name in RUN_FOLDER_SETTINGS})


def folder_started_in(run_dir, runs_dir):
    """The current folder of the command that made run_dir in runs_dir, against which a config.json's relative
    folders are read (those of a config.json of an earlier version): the folder whose runs_dir holds run_dir, else
    the current folder."""
    parent, relative = os.path.dirname(os.path.abspath(run_dir)), os.path.normpath(runs_dir)
    if relative == os.curdir:
        return parent
    if not os.path.isabs(relative) and os.pardir not in relative.split(os.sep) and parent.endswith(os.sep + relative):
        return parent[:-len(relative) - 1] or os.sep
    return os.getcwd()
