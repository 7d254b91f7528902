"""The `tipsv2` command line. Each subcommand lives in its own module and imports heavy code only when run."""
