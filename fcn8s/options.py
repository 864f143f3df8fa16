"""The training command line: its options parsed into a TrainConfig (parse_config), and the command line that starts
a new run of a TrainConfig (command_line)."""
import argparse
import dataclasses
import shlex

from fcn8s.config import (DEMO_CONFIG, BadSettings, TrainConfig, dataset_settings, default_config, flag,
                          load_config_file, load_run_config)
from fcn8s.datasets import DATASET_NAMES, DATASETS
from fcn8s.errors import ProjectError

# What a resumed run may change: a longer run, machines, where its data now is (split.json checks that it is the same).
RESUME_CHANGES = {'epochs', 'replicas', 'worker_timeout', 'data_dir'}


def dataset_demo_note(dataset_name, setting_name):
    """', with --demo: V' when the dataset's demo changes its default of setting_name, else ''."""
    demo_value = DATASETS[dataset_name].demo_settings.get(setting_name)
    return '' if demo_value is None else f', with --demo: {demo_value}'


def parse_config(argv=None, description=None):
    """(TrainConfig, run folder to resume or None) from the training command line.

    --demo switches to DEMO_CONFIG's defaults. --config FILE starts a new run with the settings of a
    config.json (a run's, or one kept in the repository such as asset/real_kitti_cpu.json): they replace the
    defaults, and options given beside it replace them in turn. --resume RUN_DIR takes the run's own settings
    from its config.json; only --epochs (to train for longer), --replicas, --worker-timeout and --data-dir (where
    its data is now) may be given with it. Exits as argparse does, with the problem, on a bad value.
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--resume', metavar='RUN_DIR',
                        help='go on with the run in RUN_DIR (runs/<timestamp>) after its last finished epoch, with '
                             'the settings of its config.json; only --epochs, --replicas, --worker-timeout and '
                             '--data-dir (where its data is now) may be given with it')
    parser.add_argument('--config', metavar='FILE',
                        help="start a new run with the settings of FILE, a run's config.json or one such as "
                             'asset/real_kitti_cpu.json; the options given beside it change them (--data-dir says '
                             'where the data is)')
    for field in dataclasses.fields(TrainConfig):
        demo_default = getattr(DEMO_CONFIG, field.name)
        demo_note = f'; with --demo: {demo_default}' if demo_default != field.default and field.name != 'demo' else ''
        demo_note += ''.join(f'; with --dataset {name}: {dataset_settings(name, False)[field.name]}'
                             f'{dataset_demo_note(name, field.name)}'
                             for name in DATASET_NAMES if field.name in dataset_settings(name, False))
        help_text = f"{field.metadata['help']} (default: {field.default}{demo_note})"
        if field.type is bool:
            parser.add_argument(flag(field.name), action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            choices = field.metadata['choices']
            parser.add_argument(flag(field.name), type=field.metadata['parse'] or field.type, default=None,
                                choices=choices, metavar=None if choices else field.name.upper(), help=help_text)
    arguments = parser.parse_args(argv)
    chosen = {name: value for name, value in vars(arguments).items() if value is not None}
    resume_dir, config_path = chosen.pop('resume', None), chosen.pop('config', None)
    if resume_dir is not None and config_path is not None:
        parser.error('--resume goes on with a run\'s own settings and --config starts a new one: give one of them')
    if resume_dir is not None and chosen.keys() - RESUME_CHANGES:
        others = ', '.join(flag(name) for name in sorted(chosen.keys() - RESUME_CHANGES))
        parser.error(f'--resume goes on with the settings in {resume_dir}/config.json; give no option but --epochs, '
                     f'--replicas, --worker-timeout and --data-dir with it (found {others})')
    try:
        if resume_dir is not None:
            config = dataclasses.replace(load_run_config(resume_dir), **chosen)
        else:
            config = dataclasses.replace(load_config_file(config_path, chosen) if config_path else
                                         default_config(chosen.get('dataset', TrainConfig.dataset),
                                                        chosen.get('demo', False)), **chosen)
    except BadSettings as bad:  # of the command line: load_config_file names config.json's keys itself
        parser.error(bad.naming(flag))
    except ProjectError as error:
        parser.exit(1, f'error: {error}\n')
    return config, resume_dir


def command_line(config):
    """The `python main.py ...` that starts a new run of config: its settings that differ from their defaults."""
    defaults = default_config(config.dataset, config.demo)
    options = ['--demo'] if config.demo else []
    for field in dataclasses.fields(TrainConfig):
        value = getattr(config, field.name)
        if value == getattr(defaults, field.name) or field.name == 'demo':
            continue
        if field.type is bool:
            options.append(flag(field.name) if value else '--no-' + flag(field.name)[2:])
        else:
            options += [flag(field.name), shlex.quote(str(value))]
    return ' '.join(['python main.py', *options])
