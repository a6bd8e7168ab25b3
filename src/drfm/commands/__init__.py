"""Subcommands of the `drfm` command line; each module: HELP, add_arguments(parser), run(args)."""
