"""`drfm train`: train DRFM, an ablation or the CC baseline; `--resume RUN_DIR` continues a run."""

from __future__ import annotations

import argparse

from drfm.config import config_names, load_config

HELP = "train a configuration (drfm, cc, a1..a8, *-cpu) on a dataset into a run folder, or resume one"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help=f"configuration name ({', '.join(config_names())}) or YAML path")
    parser.add_argument("--dataset", help="dataset reader name (see `drfm datasets`)")
    parser.add_argument("--root", help="dataset folder")
    parser.add_argument("--out", help="run folder to create (config, checkpoint, log.jsonl)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR exactly")
    parser.add_argument("--eval", action="store_true", help="evaluate the final model on the test split")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="configuration overrides, e.g. train.epochs=5 model.backbone=resnet18")


def run(args: argparse.Namespace) -> int:
    from drfm.engine import distributed
    from drfm.engine.runs import resume_run, start_run
    from drfm.errors import DrfmError

    if args.resume:
        if args.config or args.out or args.overrides:
            raise DrfmError("--resume takes the run folder alone: its config.yaml says everything else")
        trainer = resume_run(args.resume, progress=not args.quiet, needs_test_split=args.eval)
        run_dir = args.resume
    else:
        if not (args.config and args.out):
            raise DrfmError("train needs --config NAME and --out RUN_DIR (or --resume RUN_DIR)")
        config = load_config(args.config, args.overrides)
        if args.dataset:
            config["data"]["dataset"] = args.dataset
        if args.root:
            config["data"]["root"] = args.root
        trainer = start_run(config, args.out, progress=not args.quiet, needs_test_split=args.eval)
        run_dir = args.out
    trainer.fit()
    if not distributed.is_main():  # under torchrun rank 0 reports and evaluates, once
        return 0
    print(f"run finished: {run_dir}")
    if args.eval:
        from drfm.commands.evaluate import format_table
        from drfm.engine.inference import evaluate_run

        print(format_table(evaluate_run(run_dir, progress=not args.quiet)))
    return 0
