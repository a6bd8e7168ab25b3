"""`drfm export`: a run's test-time network (both encoders and the fusion) as ONNX or TorchScript."""

from __future__ import annotations

import argparse

from drfm.errors import DrfmError
from drfm.utils.io import check_output_file

HELP = "export a trained run's test-time network (E_h, E_l, CRFF; SR outside) to ONNX or TorchScript"

DESCRIPTION = """\
Write the network that maps preprocessed views to the run's L2-normalised (B, D) features.
Inputs (float32, B x 3 x H x W, H x W = the run's input size, any batch size B; each view resized
bicubically to H x W, scaled to [0, 1] and normalised with the ImageNet mean and std):

  --resolution low   hr_view = SR(x) (the run's SR backend, x factor), lr_view = x
  --resolution high  hr_view = x, lr_view = DS(x) (bicubic x factor down-sampling)

A run without a fusion module takes hr_view only. The file's metadata ("drfm": ONNX metadata
property; "drfm.json": TorchScript extra file) spells the inputs and their preprocessing out.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `drfm export`."""
    from drfm.export import EXPORT_RESOLUTIONS, FORMATS

    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", required=True, metavar="RUN_DIR", help="run folder or checkpoint file")
    parser.add_argument("--format", required=True, choices=FORMATS, help="onnx or torchscript")
    parser.add_argument("--out", required=True, metavar="FILE", help="file to write (.onnx, .pt)")
    parser.add_argument("--resolution", choices=EXPORT_RESOLUTIONS, default="low",
                        help="the images the exported model is for: low (queries) or high (default: low)")
    parser.add_argument("--device", default="cpu", help="device to trace on: cpu | cuda | cuda:N (default: cpu)")


def run(args: argparse.Namespace) -> int:
    """Load the run and write its network to --out."""
    from drfm.api import ReIDModel
    from drfm.engine.checkpoint import CONFIG_NAME
    from drfm.export import export_model, input_names

    out = check_output_file(args.out, "--out")
    model = ReIDModel.from_run(args.model, device=args.device)
    run_files = (model.checkpoint, model.checkpoint.parent / CONFIG_NAME)
    if out.exists() and any(out.resolve() == path.resolve() for path in run_files):
        raise DrfmError(f"--out {out}: is a file of the run being exported; refusing to overwrite it")
    path = export_model(model, args.format, out, args.resolution)
    print(f"wrote {path} ({args.format}; inputs {', '.join(input_names(model.network))} "
          f"of shape (B, 3, {model.config['input']['height']}, {model.config['input']['width']}); "
          f"output features (B, {model.feature_dim}))")
    return 0
