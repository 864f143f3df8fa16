"""The datasets FCN-8s learns, by name: KITTI Road (road or not) and Cityscapes (19 classes).

Each keeps the contract of fcn8s.dataset_contract.Dataset; the rest of the project asks DATASETS[name].
Importing this module loads neither TensorFlow nor matplotlib (fcn8s/tests/test_config.py checks it).
"""
from fcn8s.cityscapes.dataset import Cityscapes
from fcn8s.errors import ModelError, SettingError
from fcn8s.kitti.dataset import KittiRoad

DATASETS = {dataset.name: dataset for dataset in (KittiRoad(), Cityscapes())}
DATASET_NAMES = tuple(DATASETS)


def dataset_of_model(name, model_path):
    """DATASETS[name], the dataset that the model at model_path records it learned (its dataset.json or LiteRT
    metadata); raises ModelError naming the model when name is no dataset of this version."""
    if name not in DATASETS:
        raise ModelError(f'{model_path} records that it learned the dataset {name!r}, which this version does not know '
                         f'(it knows {", ".join(DATASET_NAMES)}): export it again with this version.')
    return DATASETS[name]


def dataset_of_folder(folder):
    """The dataset of DATASETS that folder holds (Dataset.holds): for the classic helpers, which are given folders.

    Raises SettingError naming what was looked for when no dataset, or more than one, is there.
    """
    found = [dataset for dataset in DATASETS.values() if dataset.holds(folder)]
    if len(found) != 1:
        looked_for = '; '.join(f'{dataset.name}: {dataset.folder_name}/ or {dataset.split_marker}/'
                               for dataset in DATASETS.values())
        raise SettingError(f'{folder} holds {"no dataset" if not found else "more than one dataset"} ({looked_for}): '
                           'give the dataset too, as dataset=DATASETS[name].')
    return found[0]
