"""Medical imaging: DICOM / NIfTI reading and writing, windowing, DICOM SEG export, the brain-lesions dataset."""
from toolkit.medical.io import (
                                BRATS_LABELS,
                                dicom_metadata,
                                list_series,
                                load_scan,
                                read_dicom,
                                read_series,
                                sample_file,
                                save_mask,
                                write_dicom_seg,
                                write_dicom_series,
)
from toolkit.medical.nifti import read_nifti, write_mask_nifti, write_nifti
from toolkit.medical.volume import Volume, lesion_volumes_ml
from toolkit.medical.windowing import WINDOW_PRESETS, DicomImage, apply_window, auto_window, stack_windows

__all__ = [
    "BRATS_LABELS", "WINDOW_PRESETS", "DicomImage", "Volume", "apply_window", "auto_window", "dicom_metadata",
    "lesion_volumes_ml", "list_series", "load_scan", "read_dicom", "read_nifti", "read_series", "sample_file", "save_mask",
    "stack_windows", "write_dicom_seg", "write_dicom_series", "write_mask_nifti", "write_nifti",
]
