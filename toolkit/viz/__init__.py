"""Figures: training curves, confusion matrix, PR curves, boxes, masks, 3D overlays and display slices.

Every plot draws on a bare ``matplotlib.figure.Figure`` (never pyplot), so importing the toolkit leaves the
user's matplotlib backend alone. ``toolkit.viz.slices`` (volume slices for display; needs nibabel and
``toolkit.medical``) is imported on its own: ``from toolkit.viz import slices``."""
from toolkit.viz.base import plot_results, save_figure, subplots
from toolkit.viz.classify import plot_confusion_matrix
from toolkit.viz.detect import draw_boxes, plot_pr_curve, save_annotated
from toolkit.viz.segment import colorize, overlay, palette
from toolkit.viz.segment3d import plot_overlay, write_case_csv

__all__ = ["colorize", "draw_boxes", "overlay", "palette", "plot_confusion_matrix", "plot_overlay", "plot_pr_curve",
           "plot_results", "save_annotated", "save_figure", "subplots", "write_case_csv"]
