"""One module per ``fld-engine`` subcommand."""
