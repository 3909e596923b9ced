"""The command line: parsing, printing, exit codes; doctor and demo."""
