"""KITTI Road's pictures of an evaluation: precision-recall curves and the bird's-eye views."""
import os

from fcn8s.kitti.bev import BEV_X_RANGE, BEV_Z_RANGE
from fcn8s.kitti.metric import BEV_ROW_NAMES, RoadCounts, precision_recall, road_metrics
from fcn8s.plots import pyplot


def save_pr_curve(evaluation, png_path):
    """Plot the precision-recall curves of an evaluate_road RoadEvaluation: perspective and BEV side by side.

    One curve per category with images, and overall (URBAN_ROAD in BEV); writes a PNG.
    """
    figure, panels = pyplot().subplots(1, 2, figsize=(11, 5), dpi=100)
    spaces = (('perspective', evaluation.perspective, {}), ("bird's-eye view", evaluation.bev, BEV_ROW_NAMES))
    for axes, (space, counts_by_category, row_names) in zip(panels, spaces):
        overall = sum(counts_by_category.values(), RoadCounts())
        for name, counts in [*counts_by_category.items(), ('overall', overall)]:
            if counts.images and counts.positives:
                precision, recall, kept = precision_recall(counts)
                axes.plot(recall[kept], precision[kept], linewidth=2 if name == 'overall' else 1.2,
                          label=f"{row_names.get(name, name)} (MaxF {road_metrics(counts)['MaxF']:.3f}, "
                                f'{counts.images} images)')
        axes.set_title(space)
        axes.set_xlabel('recall')
        axes.set_ylabel('precision')
        axes.set_xlim(0, 1.01)
        axes.set_ylim(0, 1.01)
        axes.grid(True, alpha=0.3)
        if overall.images:
            axes.legend(loc='lower left')
    figure.tight_layout()
    figure.savefig(png_path)
    pyplot().close(figure)


def save_bev_pictures(bev_examples, folder):
    """Write folder/bev_<category>.png for each of RoadEvaluation.bev_examples: the road seen from above.

    Three panels on the BEV grid: the camera image, the predicted road probability (what the benchmark's
    server scores) and the ground truth in KITTI's colours. Rows run from 46 m ahead (top) to 6 m
    (bottom), columns from 10 m left to 10 m right. Returns the paths written.
    """
    paths = []
    for category, (bev_image, bev_road_prob, bev_label) in sorted(bev_examples.items()):
        figure, panels = pyplot().subplots(1, 3, figsize=(8.4, 6.4), dpi=100)
        extent = (*BEV_X_RANGE, *BEV_Z_RANGE)
        for axes, (title, picture, options) in zip(panels, (
                (f'{category}: image from above', bev_image, {}),
                ('road probability', bev_road_prob, {'cmap': 'gray', 'vmin': 0, 'vmax': 1}),
                ('ground truth', bev_label, {}))):
            axes.imshow(picture, extent=extent, **options)
            axes.set_title(title)
            axes.set_xlabel('X (m)')
        panels[0].set_ylabel('Z ahead (m)')
        figure.tight_layout()
        paths.append(os.path.join(folder, f'bev_{category}.png'))
        figure.savefig(paths[-1])
        pyplot().close(figure)
    return paths
